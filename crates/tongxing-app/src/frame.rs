//! A camera frame, for the officer's page on a browser that cannot read QR codes itself: the
//! image (PNG or JPEG, as base64 or a `data:` URL) is read with the decoder `tongxing verify
//! --image` uses (`tongxing_pass::qr`, rqrr), and the code found is checked as a scanned pass.
//! Frames are bounded in bytes and pixels before any pixel is decoded, and decoded on the
//! blocking pool, a few at a time, so that frames cannot starve the checks.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tongxing_domain::text::{CheckpointId, Plate};

use crate::check::CheckOutcome;
use crate::{App, AppError, AppResult};

/// The largest frame, in bytes of PNG or JPEG.
pub const MAX_FRAME_BYTES: usize = 2 << 20;
/// The largest frame, in pixels: a 1080p frame fits; a QR code needs far fewer.
pub const MAX_FRAME_PIXELS: u64 = 2_500_000;
/// The longest `image` field: the base64 of [`MAX_FRAME_BYTES`] and a `data:` URL's prefix.
pub const MAX_FRAME_FIELD: usize = MAX_FRAME_BYTES.div_ceil(3) * 4 + 32;

/// Frames decoded at once on this process (each takes a core for tens of milliseconds).
static DECODING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Standard base64, padded or not (browsers' `toDataURL` pads; others may not).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The bytes of a frame sent as base64 or as a `data:image/png|jpeg;base64,` URL. `field` names
/// it in a refusal.
pub fn frame_bytes(field: &str, image: &str) -> AppResult<Vec<u8>> {
    let accepted = "a PNG or JPEG camera frame, as base64 or a data:image/jpeg;base64,… URL";
    if image.is_empty() {
        return Err(AppError::invalid(field, format!("is required: {accepted}")));
    }
    if image.len() > MAX_FRAME_FIELD {
        return Err(AppError::invalid(
            field,
            format!(
                "too_large: {} characters: at most {MAX_FRAME_FIELD} (a frame of {MAX_FRAME_BYTES} bytes); a frame 1280 \
                 pixels wide is enough to read a code",
                image.len()
            ),
        ));
    }
    let data = match image.strip_prefix("data:") {
        Some(rest) => {
            let Some((media, data)) = rest.split_once(',') else {
                return Err(AppError::invalid(field, format!("a data: URL without a comma: {accepted}")));
            };
            if !["image/png;base64", "image/jpeg;base64"].contains(&media) {
                return Err(AppError::invalid(
                    field,
                    format!(
                        "a data: URL of {}: accepted are image/png;base64 and image/jpeg;base64",
                        tongxing_domain::text::quote(media)
                    ),
                ));
            }
            data
        }
        None => image,
    };
    let bytes = BASE64.decode(data.as_bytes()).map_err(|e| {
        let why = match e {
            base64::DecodeError::InvalidByte(at, b) => {
                format!("character {} ({:?}) is not in the base64 alphabet", at + 1, char::from(b))
            }
            base64::DecodeError::InvalidLength(n) => format!("{n} base64 characters cannot be a whole number of bytes"),
            other => other.to_string(),
        };
        AppError::invalid(field, format!("is not base64: {why}: {accepted}"))
    })?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(AppError::invalid(
            field,
            format!("too_large: the frame is {} bytes: at most {MAX_FRAME_BYTES}", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// The text of the QR code in a frame, or why none can be read: `bad_image` (not PNG or JPEG,
/// damaged, no code found) or `too_large` (over [`MAX_FRAME_PIXELS`]), as `field`'s refusal.
pub fn read_frame(field: &str, bytes: &[u8]) -> AppResult<String> {
    tongxing_pass::qr::decode_image_within(bytes, MAX_FRAME_PIXELS)
        .map_err(|r| AppError::invalid(field, format!("{}: {}", r.stage.as_str(), r.detail)))
}

/// [`read_frame`] on the blocking pool, at most one frame a core at a time.
pub async fn read_frame_blocking(field: &str, bytes: Vec<u8>) -> AppResult<String> {
    let _permit = DECODING.acquire().await.map_err(|_| AppError::Unavailable("the frame decoder is closed".into()))?;
    let owned = field.to_string();
    tokio::task::spawn_blocking(move || read_frame(&owned, &bytes))
        .await
        .map_err(|e| AppError::Internal(format!("decoding a frame: {e}")))?
}

impl App {
    /// Checks a person by a camera frame of their pass: the code is read from the image, then
    /// checked exactly as a scanned code ([`App::check_pass`]). A frame in which no code can be
    /// read is refused naming `image`, and nothing is recorded.
    pub async fn check_frame(
        &self,
        checkpoint: &CheckpointId,
        image: &str,
        plate: Option<&Plate>,
        officer: &str,
        now: DateTime<Utc>,
    ) -> AppResult<CheckOutcome> {
        let bytes = frame_bytes("image", image)?;
        let text = read_frame_blocking("image", bytes).await?;
        self.check_pass(checkpoint, text.trim_end_matches(['\r', '\n']), plate, officer, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(r: AppResult<impl std::fmt::Debug>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn frames_as_base64_or_data_urls() {
        let png = tongxing_pass::qr_png("TX1:HELLO", 3).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
        assert_eq!(frame_bytes("image", &b64).unwrap(), png);
        assert_eq!(frame_bytes("image", b64.trim_end_matches('=')).unwrap(), png);
        assert_eq!(frame_bytes("image", &format!("data:image/png;base64,{b64}")).unwrap(), png);
        assert_eq!(read_frame("image", &png).unwrap(), "TX1:HELLO");

        assert!(refusal(frame_bytes("image", "")).starts_with("image: is required"));
        let e = refusal(frame_bytes("image", "data:text/plain;base64,QUJD"));
        assert!(e.contains("'text/plain;base64'") && e.contains("accepted are"), "{e}");
        let e = refusal(frame_bytes("image", "data:image/png;base64"));
        assert!(e.contains("without a comma"), "{e}");
        let e = refusal(frame_bytes("image", "QUJD\u{0}"));
        assert!(e.contains("character 5") && e.contains("not in the base64 alphabet"), "{e}");
        let e = refusal(frame_bytes("image", &"A".repeat(MAX_FRAME_FIELD + 1)));
        assert!(e.starts_with("image: too_large"), "{e}");
    }

    #[test]
    fn frames_without_a_code_name_the_stage() {
        let e = refusal(read_frame("image", b"GIF89a"));
        assert_eq!(e, "image: bad_image: the image is neither PNG nor JPEG");
        let blank = tongxing_pass::qr::encode_grey_png(64, 64, &[255; 64 * 64]);
        assert_eq!(refusal(read_frame("image", &blank)), "image: bad_image: no QR code was found in the image");
        // Over the frame's pixel limit, refused from the header (the rows are not even there).
        let side = 2000usize;
        let big = tongxing_pass::qr::encode_grey_png(side, side, &vec![255; side * side]);
        let e = refusal(read_frame("image", &big));
        assert!(e.starts_with("image: too_large: the image is 2000×2000 pixels"), "{e}");
    }
}
