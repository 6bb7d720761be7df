//! QR images of a code: SVG and PNG with error correction level Q (25 % of the modules can be
//! lost), and reading a code back from a PNG or JPEG photograph. Images are read into greyscale
//! here (png, zune-jpeg) and searched by rqrr; the `image` crate is not needed. An image over
//! 20 megapixels is refused from its header, before any pixel is decoded.

use qrcode::{EcLevel, QrCode};

use crate::refusal::{Refusal, Stage, refuse};

/// Largest image read, in pixels.
pub const MAX_IMAGE_PIXELS: u64 = 20_000_000;
/// Modules of blank margin around the code (the QR standard's quiet zone).
pub const QUIET_ZONE: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the text does not fit in a QR code: {0}")]
pub struct QrError(String);

fn code(text: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::Q).map_err(|e| QrError(e.to_string()))
}

/// An SVG document of the code (level Q, quiet zone included), at least 256 units wide.
pub fn qr_svg(text: &str) -> Result<String, QrError> {
    Ok(code(text)?.render::<qrcode::render::svg::Color<'_>>().min_dimensions(256, 256).quiet_zone(true).build())
}

/// A compact SVG of the code to put inside an HTML page: one path of horizontal runs in module
/// units (quiet zone included), no XML prolog, no size (the page's style sets it). A third or
/// less of [`qr_svg`]'s bytes, so that a page showing a family's codes stays small.
pub fn qr_svg_inline(text: &str) -> Result<String, QrError> {
    use std::fmt::Write;
    let code = code(text)?;
    let (n, colors) = (code.width(), code.to_colors());
    let side = n + 2 * QUIET_ZONE;
    let mut d = String::with_capacity(n * n);
    for y in 0..n {
        let mut x = 0;
        while x < n {
            if colors[y * n + x] == qrcode::Color::Dark {
                let start = x;
                while x < n && colors[y * n + x] == qrcode::Color::Dark {
                    x += 1;
                }
                write!(d, "M{} {}.5h{}", start + QUIET_ZONE, y + QUIET_ZONE, x - start).expect("writing to a String");
            } else {
                x += 1;
            }
        }
    }
    Ok(format!(
        "<svg viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\"><rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path stroke=\"#000\" d=\"{d}\"/></svg>"
    ))
}

/// A greyscale PNG of the code (level Q), `module_px` pixels a module, quiet zone included.
pub fn qr_png(text: &str, module_px: usize) -> Result<Vec<u8>, QrError> {
    let code = code(text)?;
    let (modules, colors) = (code.width(), code.to_colors());
    let scale = module_px.max(1);
    let side = (modules + 2 * QUIET_ZONE) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (mx, my) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
            for y in my * scale..(my + 1) * scale {
                pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
            }
        }
    }
    Ok(encode_grey_png(side, side, &pixels))
}

/// Writes 8-bit greyscale pixels (row-major) as a PNG.
pub fn encode_grey_png(width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().expect("writing a PNG header to memory");
    w.write_image_data(pixels).expect("writing PNG data to memory");
    w.finish().expect("finishing a PNG in memory");
    out
}

/// A greyscale image: `width × height` bytes, 0 black, 255 white.
pub struct Grey {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Reads a PNG or JPEG into greyscale, refusing more than [`MAX_IMAGE_PIXELS`] from the header.
pub fn read_grey(bytes: &[u8]) -> Result<Grey, Refusal> {
    read_grey_within(bytes, MAX_IMAGE_PIXELS)
}

/// [`read_grey`] with a smaller pixel limit (a camera frame needs far fewer pixels than a photo),
/// checked from the header before any pixel is decoded.
pub fn read_grey_within(bytes: &[u8], max_pixels: u64) -> Result<Grey, Refusal> {
    let max_pixels = max_pixels.min(MAX_IMAGE_PIXELS);
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        read_png(bytes, max_pixels)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        read_jpeg(bytes, max_pixels)
    } else {
        refuse(Stage::BadImage, "the image is neither PNG nor JPEG")
    }
}

fn check_size(w: u64, h: u64, max_pixels: u64) -> Result<(), Refusal> {
    if w.saturating_mul(h) > max_pixels {
        return refuse(Stage::TooLarge, format!("the image is {w}×{h} pixels: at most {max_pixels} pixels"));
    }
    if w == 0 || h == 0 {
        return refuse(Stage::BadImage, "the image is empty");
    }
    Ok(())
}

fn read_png(bytes: &[u8], max_pixels: u64) -> Result<Grey, Refusal> {
    let bad = |e: png::DecodingError| Refusal::new(Stage::BadImage, format!("bad PNG: {e}"));
    let mut dec = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), png::Limits { bytes: 256 << 20 });
    let info = dec.read_header_info().map_err(bad)?;
    check_size(info.width as u64, info.height as u64, max_pixels)?;
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(bad)?;
    let size = reader.output_buffer_size().ok_or_else(|| Refusal::new(Stage::TooLarge, "the PNG is too large"))?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(bad)?;
    let (w, h) = (frame.width as usize, frame.height as usize);
    let data = &buf[..frame.buffer_size()];
    let stride = frame.line_size;
    let channels = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return refuse(Stage::BadImage, "an indexed PNG that did not expand"),
    };
    let mut pixels = Vec::with_capacity(w * h);
    for y in 0..h {
        let row = &data[y * stride..y * stride + w * channels];
        for px in row.chunks_exact(channels) {
            pixels.push(match channels {
                1 => px[0],
                2 => over_white(px[0], px[1]),
                3 => luma(px[0], px[1], px[2]),
                _ => over_white(luma(px[0], px[1], px[2]), px[3]),
            });
        }
    }
    Ok(Grey { width: w, height: h, pixels })
}

fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 299 + g as u32 * 587 + b as u32 * 114) / 1000) as u8
}

fn over_white(l: u8, a: u8) -> u8 {
    ((l as u32 * a as u32 + 255 * (255 - a as u32)) / 255) as u8
}

/// The dimensions in a JPEG's frame header (SOFn), found by walking the marker segments
/// before the decoder is given the file.
fn jpeg_dimensions(b: &[u8]) -> Option<(u64, u64)> {
    let mut i = 2;
    loop {
        while b.get(i) == Some(&0xff) && b.get(i + 1) == Some(&0xff) {
            i += 1; // fill bytes
        }
        if b.get(i) != Some(&0xff) {
            return None;
        }
        let m = *b.get(i + 1)?;
        match m {
            0xd8 | 0x01 | 0xd0..=0xd7 => i += 2,
            0xd9 | 0xda => return None,
            0xc0..=0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf => {
                let h = u16::from_be_bytes([*b.get(i + 5)?, *b.get(i + 6)?]);
                let w = u16::from_be_bytes([*b.get(i + 7)?, *b.get(i + 8)?]);
                return Some((w as u64, h as u64));
            }
            _ => i += 2 + u16::from_be_bytes([*b.get(i + 2)?, *b.get(i + 3)?]) as usize,
        }
    }
}

fn read_jpeg(bytes: &[u8], max_pixels: u64) -> Result<Grey, Refusal> {
    if let Some((w, h)) = jpeg_dimensions(bytes) {
        check_size(w, h, max_pixels)?;
    }
    use zune_jpeg::zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::Luma)
        .set_max_width(1 << 16)
        .set_max_height(1 << 16);
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), opts);
    let bad = |e: zune_jpeg::errors::DecodeErrors| Refusal::new(Stage::BadImage, format!("bad JPEG: {e:?}"));
    dec.decode_headers().map_err(bad)?;
    let (w, h) = dec.dimensions().ok_or_else(|| Refusal::new(Stage::BadImage, "a JPEG without dimensions"))?;
    check_size(w as u64, h as u64, max_pixels)?;
    let pixels = dec.decode().map_err(bad)?;
    if pixels.len() != w * h {
        return refuse(Stage::BadImage, "the JPEG did not decode to one grey byte a pixel");
    }
    Ok(Grey { width: w, height: h, pixels })
}

/// Reads the text of the first QR code found in a PNG or JPEG image.
pub fn decode_image(bytes: &[u8]) -> Result<String, Refusal> {
    decode_image_within(bytes, MAX_IMAGE_PIXELS)
}

/// [`decode_image`] of an image of at most `max_pixels` (never more than [`MAX_IMAGE_PIXELS`]).
pub fn decode_image_within(bytes: &[u8], max_pixels: u64) -> Result<String, Refusal> {
    let grey = read_grey_within(bytes, max_pixels)?;
    decode_grey(&grey)
}

/// Reads the text of the first QR code found in a greyscale image.
pub fn decode_grey(grey: &Grey) -> Result<String, Refusal> {
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(grey.width, grey.height, |x, y| grey.pixels[y * grey.width + x]);
    let grids = img.detect_grids();
    let mut last_error = None;
    for g in &grids {
        match g.decode() {
            Ok((_, text)) => return Ok(text),
            Err(e) => last_error = Some(e),
        }
    }
    match last_error {
        Some(e) => refuse(Stage::BadImage, format!("a QR code was found but could not be read: {e}")),
        None => refuse(Stage::BadImage, "no QR code was found in the image"),
    }
}

#[cfg(test)]
mod inline_tests {
    use super::*;

    /// The runs of the inline SVG, read back, are exactly the code's dark modules.
    #[test]
    fn inline_svg_draws_every_module() {
        let text = "TX1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEMWK G2EP4J0B3KL6QM5/OC";
        let code = code(text).unwrap();
        let (n, colors) = (code.width(), code.to_colors());
        let svg = qr_svg_inline(text).unwrap();
        let d = svg.split("d=\"").nth(1).unwrap().split('"').next().unwrap();
        let mut grid = vec![false; n * n];
        for run in d.split('M').filter(|r| !r.is_empty()) {
            let (xy, len) = run.split_once('h').unwrap();
            let (x, y) = xy.split_once(' ').unwrap();
            let (x, y): (usize, usize) = (x.parse().unwrap(), y.trim_end_matches(".5").parse().unwrap());
            for i in 0..len.parse::<usize>().unwrap() {
                grid[(y - QUIET_ZONE) * n + x - QUIET_ZONE + i] = true;
            }
        }
        let dark: Vec<bool> = colors.iter().map(|c| *c == qrcode::Color::Dark).collect();
        assert_eq!(grid, dark);
        assert!(svg.len() * 3 < qr_svg(text).unwrap().len(), "{} vs {}", svg.len(), qr_svg(text).unwrap().len());
    }
}
