use tongxing_pass::qr::{MAX_IMAGE_PIXELS, encode_grey_png, read_grey};
use tongxing_pass::{Algorithm, Stage, decode_image, issue, qr_png, qr_svg};

use crate::common::{sample_pass, setup};

fn text() -> String {
    let (signer, ..) = setup(Algorithm::Es256);
    issue(&signer, &sample_pass()).unwrap()
}

#[test]
fn generated_png_decodes_to_the_same_text() {
    let t = text();
    let png = qr_png(&t, 6).unwrap();
    assert_eq!(decode_image(&png).unwrap(), t);
    let svg = qr_svg(&t).unwrap();
    assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{}", &svg[..80]);
}

/// Bilinear sample of a grey image at (x, y), white outside.
fn sample(px: &[u8], w: usize, h: usize, x: f64, y: f64) -> f64 {
    if x < 0.0 || y < 0.0 || x > (w - 1) as f64 || y > (h - 1) as f64 {
        return 255.0;
    }
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let p = |x: usize, y: usize| px[y * w + x] as f64;
    let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
    let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// A phone photo of a screen, roughly: scaled 1.7× (bilinear), rotated 4°, a grey border
/// around it, the contrast lowered, and noise from a fixed-seed generator.
fn photographed(png: &[u8]) -> Vec<u8> {
    let g = read_grey(png).unwrap();
    let (scale, angle, border) = (1.7f64, 4f64.to_radians(), 60usize);
    let side = (g.width as f64 * scale) as usize + 2 * border;
    let (cx, cy) = (side as f64 / 2.0, side as f64 / 2.0);
    let (sin, cos) = angle.sin_cos();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 61) as f64 - 30.0
    };
    let mut out = vec![0u8; side * side];
    for y in 0..side {
        for x in 0..side {
            // Inverse mapping: output pixel → source pixel.
            let (dx, dy) = (x as f64 - cx, y as f64 - cy);
            let (rx, ry) = (dx * cos + dy * sin, -dx * sin + dy * cos);
            let (sx, sy) = (rx / scale + g.width as f64 / 2.0, ry / scale + g.height as f64 / 2.0);
            let inside = sx >= 0.0 && sy >= 0.0 && sx < g.width as f64 && sy < g.height as f64;
            let v = if inside { 40.0 + sample(&g.pixels, g.width, g.height, sx, sy) * 0.7 } else { 128.0 };
            out[y * side + x] = (v + noise()).clamp(0.0, 255.0) as u8;
        }
    }
    encode_grey_png(side, side, &out)
}

#[test]
fn a_photographed_looking_code_decodes_to_the_same_text() {
    let t = text();
    let photo = photographed(&qr_png(&t, 4).unwrap());
    assert_ne!(photo, qr_png(&t, 4).unwrap());
    assert_eq!(decode_image(&photo).unwrap(), t);
}

fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc.sum().to_be_bytes());
    png
}

#[test]
fn images_over_twenty_megapixels_are_refused_from_the_header() {
    // 5000 × 4001 claimed by a header with no pixel data behind it.
    let r = decode_image(&png_header(5000, 4001)).unwrap_err();
    assert_eq!(r.stage, Stage::TooLarge, "{r}");
    const { assert!(5000 * 4001 > MAX_IMAGE_PIXELS) };
    // At the limit the header passes and the missing data is what fails.
    assert_eq!(decode_image(&png_header(5000, 4000)).unwrap_err().stage, Stage::BadImage);
    // A JPEG whose frame header claims 6000 × 4000.
    let mut jpeg = vec![0xff, 0xd8, 0xff, 0xc0, 0x00, 0x0b, 0x08];
    jpeg.extend_from_slice(&4000u16.to_be_bytes());
    jpeg.extend_from_slice(&6000u16.to_be_bytes());
    jpeg.extend_from_slice(&[0x01, 0x01, 0x11, 0x00, 0xff, 0xd9]);
    let r = decode_image(&jpeg).unwrap_err();
    assert_eq!(r.stage, Stage::TooLarge, "{r}");
}

#[test]
fn not_an_image_and_no_code() {
    assert_eq!(decode_image(b"GIF89a").unwrap_err().stage, Stage::BadImage);
    let blank = encode_grey_png(100, 100, &[255; 10_000]);
    let r = decode_image(&blank).unwrap_err();
    assert_eq!(r.stage, Stage::BadImage);
    assert!(r.detail.contains("no QR code"), "{r}");
}

/// A JPEG made outside this crate (Pillow: scaled 1.5×, rotated 3°, blurred, noised, quality
/// 70, from a PNG of `qr_png`): the JPEG path reads it. See testdata/qr/README.md.
#[test]
fn a_jpeg_photo_decodes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/qr");
    let jpeg = std::fs::read(format!("{dir}/photo.jpg")).unwrap();
    let want = std::fs::read_to_string(format!("{dir}/photo.txt")).unwrap();
    assert_eq!(decode_image(&jpeg).unwrap(), want.trim());
}
