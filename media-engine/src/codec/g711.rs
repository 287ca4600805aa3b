//! ITU-T G.711 µ-law (PCMU) and A-law (PCMA) companding.
//!
//! Bit-exact with the ITU-T reference (the algorithm of Sun's public-domain `g711.c`, which the
//! ITU-T G.191 tools also reproduce): 14-bit (µ-law) / 13-bit (A-law) linear input taken from the
//! top of an `i16`.

/// µ-law bias added before finding the segment (33 << 2, in 16-bit scale).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law can represent after biasing (in 16-bit scale).
const ULAW_CLIP: i32 = 32635;

/// Silence in µ-law: the code for linear 0 (positive zero).
pub const ULAW_SILENCE: u8 = 0xFF;
/// Silence in A-law: the code for linear 0 (positive zero, even bits inverted).
pub const ALAW_SILENCE: u8 = 0xD5;

/// Encodes one linear sample to µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    // The sign bit is set for negative samples before the final inversion (so positive codes
    // end up in 0x80..=0xFF on the wire).
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0x00
    };
    pcm = pcm.min(ULAW_CLIP) + ULAW_BIAS;
    // Segment = position of the highest set bit above bit 7 (0..=7).
    let segment = (31 - (pcm as u32).leading_zeros()).saturating_sub(7).min(7);
    let mantissa = (pcm >> (segment + 3)) & 0x0F;
    !(sign | ((segment as i32) << 4) as u8 | mantissa as u8)
}

/// Decodes one µ-law code to linear.
pub fn ulaw_to_linear(code: u8) -> i16 {
    let code = !code;
    let segment = (code >> 4) & 0x07;
    let mantissa = i32::from(code & 0x0F);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    // Max magnitude is 32124, so the cast cannot truncate.
    if code & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one linear sample to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13 bits.
    let mut pcm = i32::from(sample) >> 3;
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    // Segment end points (13-bit magnitude) of the eight A-law segments.
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let segment = SEG_END.iter().position(|&end| pcm <= end);
    let code = match segment {
        None => 0x7F,
        Some(seg) => {
            let shift = if seg < 2 { 1 } else { seg as i32 };
            ((seg as i32) << 4 | ((pcm >> shift) & 0x0F)) as u8
        }
    };
    code ^ mask
}

/// Decodes one A-law code to linear.
pub fn alaw_to_linear(code: u8) -> i16 {
    let code = code ^ 0x55;
    let mantissa = i32::from(code & 0x0F) << 4;
    let segment = (code & 0x70) >> 4;
    let magnitude = match segment {
        0 => mantissa + 8,
        1 => mantissa + 0x108,
        seg => (mantissa + 0x108) << (seg - 1),
    };
    // Max magnitude is 32256, so the cast cannot truncate.
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_code_points() {
        // Values from the ITU-T G.711 µ-law table (Table 2a) / g711.c.
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0xF0), 120);
        assert_eq!(ulaw_to_linear(0xEF), 132);
        assert_eq!(linear_to_ulaw(1000), 0xCE);
        assert_eq!(ulaw_to_linear(0xCE), 988);
    }

    #[test]
    fn alaw_known_code_points() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_alaw(1000), 0xFA);
        assert_eq!(alaw_to_linear(0xFA), 1008);
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law {code:#04x}"
            );
            // 0x7F is µ-law negative zero; it decodes to 0 and re-encodes as positive zero.
            if code != 0x7F {
                assert_eq!(
                    linear_to_ulaw(ulaw_to_linear(code)),
                    code,
                    "µ-law {code:#04x}"
                );
            }
        }
    }

    #[test]
    fn quantisation_error_is_bounded() {
        // Companding keeps the relative error below ~1/16 of the magnitude (4 mantissa bits).
        for x in (-32000i32..32000).step_by(7) {
            let x = x as i16;
            let tolerance = (i32::from(x).abs() / 16).max(16);
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(x)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(x)));
            assert!((u - i32::from(x)).abs() <= tolerance, "µ-law {x} -> {u}");
            assert!((a - i32::from(x)).abs() <= tolerance, "A-law {x} -> {a}");
        }
    }
}
