//! The checkpoint officer's tools beyond a typed code: a camera frame read on the server
//! (`POST /api/v1/checks/frame`), and `tongxing checkpoint serve`, the checkpoint's own node that
//! decides offline, keeps its queue through a kill -9 and uploads each check once.

use base64::Engine;
use chrono::Duration;
use serde_json::json;

use crate::both;
use crate::helpers::*;
use crate::offline::{Offline, claims};

/// A camera frame: the pass's QR code (3 pixels a module) on a light grey background of
/// `w × h` pixels, off centre, as the page's canvas would send it.
pub fn frame_png(text: &str, w: usize, h: usize) -> Vec<u8> {
    let qr = tongxing_pass::qr::read_grey(&tongxing_pass::qr_png(text, 3).unwrap()).unwrap();
    let mut pixels = vec![200u8; w * h];
    let (ox, oy) = (w / 5, h / 6);
    for y in 0..qr.height.min(h - oy) {
        for x in 0..qr.width.min(w - ox) {
            pixels[(oy + y) * w + ox + x] = qr.pixels[y * qr.width + x];
        }
    }
    tongxing_pass::qr::encode_grey_png(w, h, &pixels)
}

pub fn data_url(png: &[u8]) -> String {
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
}

// A frame is read with the decoder of `tongxing verify --image` and checked as the scanned
// code: the same answer as `{"qr": …}`, recorded once. A frame without a code is refused naming
// `image` (the page sends the next frame) and records nothing; a code read but refused names its
// stage, as a scanned one does.
both!(fn a_camera_frame_is_checked_like_a_scanned_code(b) {
    let o = Offline::spawn(b);
    let app = &o.app;
    let doc = nth_id("110105", 61);
    app.negative(&doc, Duration::hours(3));
    let pass = o.issue(&doc);
    let frame = frame_png(&pass, 640, 480);

    let r = app.post("officer", "/api/v1/checks/frame",
        json!({"checkpoint_id": "CP1", "image": data_url(&frame), "plate": "冀R12345"}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["verdict"], "pass", "{r:?}");
    assert_eq!(r.body["reasons"][0]["code"], "NEGATIVE_WITHIN_WINDOW");
    let scanned = app.post("officer", "/api/v1/checks", json!({"checkpoint_id": "CP1", "qr": pass}));
    assert_eq!(scanned.status, 200);
    for field in ["verdict", "reasons", "code_colour", "commuter", "policy_id", "policy_version", "document"] {
        assert_eq!(r.body[field], scanned.body[field], "{field}");
    }
    assert_eq!(o.entry_events(), 2);
    let entries = app.get("admin", "/api/v1/entries").body;
    // Oldest first: the frame's check, then the scanned one.
    assert_eq!(entries[0]["via"], "pass", "{entries}");
    assert_eq!(entries[0]["plate"], "冀R12345", "{entries}");
    // Raw base64 is accepted as well as a data: URL; the tongxing verify CLI reads the same frame.
    let raw = base64::engine::general_purpose::STANDARD.encode(&frame);
    let r = app.post("officer", "/api/v1/checks/frame", json!({"checkpoint_id": "CP1", "image": raw}));
    assert_eq!(r.body["verdict"], "pass", "{r:?}");
    o.synced();
    let file = app.db.dir.join("frame.png");
    std::fs::write(&file, &frame).unwrap();
    let (code, lines, err) = o.verify(&["--image", file.to_str().unwrap()]);
    assert_eq!((code, lines[0]["verdict"].as_str()), (0, Some("pass")), "{err}");
    let events = o.entry_events();

    // No code in the frame; not an image; too many pixels; not base64: 422 naming `image`.
    let refused = |image: String, starts: &str| {
        let r = app.post("officer", "/api/v1/checks/frame", json!({"checkpoint_id": "CP1", "image": image}));
        assert_eq!(r.status, 422, "{r:?}");
        assert_eq!(r.body["field"], "image", "{r:?}");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.starts_with(starts), "{detail}");
    };
    let blank = tongxing_pass::qr::encode_grey_png(320, 240, &vec![200; 320 * 240]);
    refused(data_url(&blank), "image: bad_image: no QR code was found");
    refused(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(b"GIF89a....")),
        "image: bad_image: the image is neither PNG nor JPEG");
    refused(data_url(&frame_png(&pass, 2000, 1500)), "image: too_large: the image is 2000×1500 pixels");
    refused("data:image/gif;base64,R0lGOD".into(), "image: a data: URL of 'image/gif;base64'");
    refused("not base64!".into(), "image: is not base64");
    // A code read but refused: the stage, as for a scanned code.
    let (other, _) = tongxing_pass::Signer::generate(tongxing_pass::Algorithm::Es256).unwrap();
    let forged = tongxing_pass::issue(&other, &claims(&pass)).unwrap();
    let r = app.post("officer", "/api/v1/checks/frame",
        json!({"checkpoint_id": "CP1", "image": data_url(&frame_png(&forged, 640, 480))}));
    assert_eq!((r.status, r.body["stage"].as_str()), (422, Some("unknown_key")), "{r:?}");
    let r = app.post("officer", "/api/v1/checks/frame",
        json!({"checkpoint_id": "CP1", "image": data_url(&frame_png("HELLO", 640, 480))}));
    assert_eq!((r.status, r.body["stage"].as_str()), (422, Some("bad_prefix")), "{r:?}");
    // Not an officer; a checkpoint outside the token's scope.
    let r = app.post("lab", "/api/v1/checks/frame", json!({"checkpoint_id": "CP1", "image": data_url(&frame)}));
    assert_eq!(r.status, 403);
    let elsewhere = app.db.scoped_token("officer", &["CP2"]);
    let r = app.call("POST", "/api/v1/checks/frame", Some(&elsewhere),
        Some(json!({"checkpoint_id": "CP1", "image": data_url(&frame)})));
    assert_eq!(r.status, 403);
    assert_eq!(o.entry_events(), events, "refused frames record nothing");
});
