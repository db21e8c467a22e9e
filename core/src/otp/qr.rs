//! QR codes drawn as text (for psql) and as SVG.

use qrcode::{Color, EcLevel, QrCode};

use super::OtpError;

/// Modules of quiet zone around the symbol (ISO/IEC 18004 asks for 4).
const QUIET_ZONE: usize = 4;

/// A QR symbol with its quiet zone: `dark(x, y)` over `0..size`.
struct Matrix {
    size: usize,
    width: usize,
    colors: Vec<Color>,
}

impl Matrix {
    fn new(data: &str) -> Result<Self, OtpError> {
        // Refused before encoding: the encoder's working memory grows with the input (about
        // 24 bytes per byte), and nothing longer than this fits in any QR code.
        if data.len() > super::limits::QR_DATA {
            return Err(OtpError::QrTooLong);
        }
        let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|_| OtpError::QrTooLong)?;
        let width = code.width();
        Ok(Matrix { size: width + 2 * QUIET_ZONE, width, colors: code.to_colors() })
    }

    fn dark(&self, x: usize, y: usize) -> bool {
        if x < QUIET_ZONE || y < QUIET_ZONE || x >= QUIET_ZONE + self.width || y >= QUIET_ZONE + self.width {
            return false;
        }
        self.colors[(y - QUIET_ZONE) * self.width + (x - QUIET_ZONE)] == Color::Dark
    }
}

/// The QR code of `data` as lines of Unicode half blocks, two modules per character
/// cell vertically, with the quiet zone drawn.
///
/// A character cell can only show the terminal's foreground (the glyph) and
/// background colours. Scanners need dark modules on a light ground, so:
/// - `invert = false` (for the usual light-on-dark terminal): *light* modules,
///   quiet zone included, are drawn with block glyphs in the light foreground and
///   dark modules are left as the dark background;
/// - `invert = true` (for dark-on-light terminals): dark modules are drawn and the
///   light background shows through.
pub fn to_text(data: &str, invert: bool) -> Result<String, OtpError> {
    let m = Matrix::new(data)?;
    // The "ink" is what a glyph paints.
    let ink = |x: usize, y: usize| -> bool {
        if y >= m.size {
            // Below the last row (odd height): background, i.e. a light module only when inverted.
            return false;
        }
        m.dark(x, y) == invert
    };
    let rows = m.size.div_ceil(2);
    let mut out = String::with_capacity(rows * (m.size * 3 + 1));
    for r in 0..rows {
        let (top, bottom) = (2 * r, 2 * r + 1);
        for x in 0..m.size {
            out.push(match (ink(x, top), ink(x, bottom)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        if r + 1 < rows {
            out.push('\n');
        }
    }
    Ok(out)
}

/// The QR code of `data` as a standalone SVG document (one path, crisp edges).
pub fn to_svg(data: &str) -> Result<String, OtpError> {
    let m = Matrix::new(data)?;
    let mut path = String::new();
    for y in 0..m.size {
        let mut x = 0;
        while x < m.size {
            if m.dark(x, y) {
                let start = x;
                while x < m.size && m.dark(x, y) {
                    x += 1;
                }
                path.push_str(&format!("M{start} {y}h{}v1h-{}z", x - start, x - start));
            } else {
                x += 1;
            }
        }
    }
    let s = m.size;
    let px = s * 8;
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{px}\" height=\"{px}\" viewBox=\"0 0 {s} {s}\" shape-rendering=\"crispEdges\"><rect width=\"{s}\" height=\"{s}\" fill=\"#ffffff\"/><path d=\"{path}\" fill=\"#000000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes the half-block text back into a module matrix and checks it against
    /// the QR library's own matrix: the drawing loses nothing and keeps the quiet zone.
    #[test]
    fn text_draws_every_module() {
        let data = "otpauth://totp/ACME:alice?secret=JBSWY3DPEHPK3PXP&issuer=ACME";
        let m = Matrix::new(data).unwrap();
        for invert in [false, true] {
            let text = to_text(data, invert).unwrap();
            let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
            assert_eq!(lines.len(), m.size.div_ceil(2));
            for (r, line) in lines.iter().enumerate() {
                assert_eq!(line.len(), m.size);
                for (x, ch) in line.iter().enumerate() {
                    let (t, b) = match ch {
                        '█' => (true, true),
                        '▀' => (true, false),
                        '▄' => (false, true),
                        ' ' => (false, false),
                        c => panic!("unexpected {c:?}"),
                    };
                    assert_eq!(t, m.dark(x, 2 * r) == invert);
                    if 2 * r + 1 < m.size {
                        assert_eq!(b, m.dark(x, 2 * r + 1) == invert);
                    }
                }
            }
            // Quiet zone: the first two text rows are all light modules.
            let light = if invert { ' ' } else { '█' };
            assert!(lines[0].iter().all(|c| *c == light));
        }
    }

    #[test]
    fn svg_is_well_formed() {
        let svg = to_svg("hello").unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("viewBox=\"0 0 29 29\"")); // version 1: 21 + 2*4
    }

    #[test]
    fn too_long_is_an_error() {
        assert_eq!(to_text(&"x".repeat(5000), false).unwrap_err(), OtpError::QrTooLong);
    }
}
