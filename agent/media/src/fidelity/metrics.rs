//! Per-frame full-reference metrics over 8-bit I420 planes: PSNR of Y, U and V, SSIM of Y (on 8x8
//! blocks, no overlap), and a local measure: the PSNR-Y of the worst tile of the frame.
//!
//! One pass over the luma plane gathers per-8x8-block sums (Σx, Σy, Σx², Σy², Σxy, in integers); the
//! frame's MSE, its SSIM and the tiles' MSE all come from those sums.

/// Highest PSNR reported (identical planes): keeps every number finite, so reports serialise.
pub const PSNR_CAP: f64 = 100.0;

/// Mean (U-128)² + (V-128)² per chroma sample under which a frame counts as grey.
const GREY_CHROMA_ENERGY: f64 = 9.0;

const SSIM_C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
const SSIM_C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// An 8-bit plane, tightly packed (stride = width).
#[derive(Debug, Clone, Default)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Plane {
    fn row(&self, y: usize, x0: usize, len: usize) -> &[u8] {
        let s = y * self.width + x0;
        &self.data[s..s + len]
    }
}

/// The metrics of one rendition frame against its source frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameMetrics {
    pub psnr_y: f64,
    pub psnr_u: f64,
    pub psnr_v: f64,
    pub ssim_y: f64,
    /// PSNR-Y of the worst `tile` x `tile` tile of the frame.
    pub local_psnr_y: f64,
    /// Colour saturation of the rendition over the source's, Σ((U-128)²+(V-128)²) over both chroma planes;
    /// 1 when the source frame is (nearly) grey, as there is no colour to lose.
    pub saturation_ratio: f64,
}

/// PSNR (dB) of 8-bit samples from a mean squared error, capped at [`PSNR_CAP`].
pub fn psnr(mse: f64) -> f64 {
    if mse <= 0.0 {
        return PSNR_CAP;
    }
    (10.0 * (255.0 * 255.0 / mse).log10()).min(PSNR_CAP)
}

/// Mean squared error of two planes of the same size (0 for empty planes).
pub fn mse(a: &Plane, b: &Plane) -> f64 {
    let n = a.data.len().min(b.data.len());
    if n == 0 {
        return 0.0;
    }
    let sse: u64 = a.data[..n]
        .iter()
        .zip(&b.data[..n])
        .map(|(&x, &y)| {
            let d = i32::from(x) - i32::from(y);
            (d * d) as u64
        })
        .sum();
    sse as f64 / n as f64
}

/// Luma statistics: (MSE, mean SSIM over 8x8 blocks, MSE of the worst tile).
/// `tile` is rounded up to a multiple of 8; tiles at the right/bottom edges may be partial.
pub fn luma(a: &Plane, b: &Plane, tile: usize) -> (f64, f64, f64) {
    let (w, h) = (a.width.min(b.width), a.height.min(b.height));
    if w == 0 || h == 0 {
        return (0.0, 1.0, 0.0);
    }
    let tb = tile.div_ceil(8).max(1); // blocks per tile side
    let bw = w.div_ceil(8);
    let bh = h.div_ceil(8);
    let tw = bw.div_ceil(tb);
    let th = bh.div_ceil(tb);
    // per tile: (sse, pixels)
    let mut tiles = vec![(0u64, 0u64); tw * th];
    let mut sse_total = 0u64;
    let mut ssim_sum = 0.0f64;
    let mut ssim_weight = 0u64;
    for by in 0..bh {
        let y0 = by * 8;
        let rows = (h - y0).min(8);
        for bx in 0..bw {
            let x0 = bx * 8;
            let cols = (w - x0).min(8);
            let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0u32, 0u32, 0u32, 0u32, 0u32);
            for r in 0..rows {
                let ra = a.row(y0 + r, x0, cols);
                let rb = b.row(y0 + r, x0, cols);
                for (&p, &q) in ra.iter().zip(rb) {
                    let (p, q) = (u32::from(p), u32::from(q));
                    sx += p;
                    sy += q;
                    sxx += p * p;
                    syy += q * q;
                    sxy += p * q;
                }
            }
            let n = (rows * cols) as u64;
            // Σ(x-y)² = Σx² + Σy² - 2Σxy, exact in integers
            let sse = u64::from(sxx) + u64::from(syy) - 2 * u64::from(sxy);
            sse_total += sse;
            let nf = n as f64;
            let (mx, my) = (f64::from(sx) / nf, f64::from(sy) / nf);
            let vx = (f64::from(sxx) / nf - mx * mx).max(0.0);
            let vy = (f64::from(syy) / nf - my * my).max(0.0);
            let cov = f64::from(sxy) / nf - mx * my;
            let s = ((2.0 * mx * my + SSIM_C1) * (2.0 * cov + SSIM_C2))
                / ((mx * mx + my * my + SSIM_C1) * (vx + vy + SSIM_C2));
            ssim_sum += s * nf;
            ssim_weight += n;
            let t = &mut tiles[(by / tb) * tw + bx / tb];
            t.0 += sse;
            t.1 += n;
        }
    }
    let worst_tile = tiles
        .iter()
        .filter(|t| t.1 > 0)
        .map(|t| t.0 as f64 / t.1 as f64)
        .fold(0.0, f64::max);
    (
        sse_total as f64 / (w * h) as f64,
        ssim_sum / ssim_weight.max(1) as f64,
        worst_tile,
    )
}

fn chroma_energy(p: &Plane) -> u64 {
    p.data
        .iter()
        .map(|&x| {
            let d = i32::from(x) - 128;
            (d * d) as u64
        })
        .sum()
}

/// All metrics of a frame pair (Y, U, V planes each; same sizes).
pub fn frame(a: [&Plane; 3], b: [&Plane; 3], tile: usize) -> FrameMetrics {
    let (mse_y, ssim_y, worst) = luma(a[0], b[0], tile);
    let ea = chroma_energy(a[1]) + chroma_energy(a[2]);
    let eb = chroma_energy(b[1]) + chroma_energy(b[2]);
    let n = (a[1].data.len() + a[2].data.len()).max(1) as f64;
    // a source frame whose chroma is within ~3 levels of grey (rms) has no colour to lose
    let saturation_ratio = if (ea as f64 / n) < GREY_CHROMA_ENERGY {
        1.0
    } else {
        eb as f64 / ea as f64
    };
    FrameMetrics {
        psnr_y: psnr(mse_y),
        psnr_u: psnr(mse(a[1], b[1])),
        psnr_v: psnr(mse(a[2], b[2])),
        ssim_y,
        local_psnr_y: psnr(worst),
        saturation_ratio,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> Plane {
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                data.push(f(x, y));
            }
        }
        Plane {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn identical_planes_are_perfect() {
        let a = plane(37, 21, |x, y| (x * 7 + y * 3) as u8);
        let (m, s, worst) = luma(&a, &a, 16);
        assert_eq!(m, 0.0);
        assert!((s - 1.0).abs() < 1e-9);
        assert_eq!(worst, 0.0);
        assert_eq!(psnr(m), PSNR_CAP);
    }

    #[test]
    fn known_error() {
        // constant difference of 5 everywhere: MSE 25, PSNR 34.15 dB
        let a = plane(64, 32, |x, y| ((x + y) % 200) as u8);
        let b = plane(64, 32, |x, y| ((x + y) % 200 + 5) as u8);
        let (m, _, worst) = luma(&a, &b, 16);
        assert!((m - 25.0).abs() < 1e-9);
        assert!((worst - 25.0).abs() < 1e-9);
        assert!((psnr(m) - 34.151).abs() < 1e-3);
        assert!((mse(&a, &b) - 25.0).abs() < 1e-9);
    }

    #[test]
    fn a_small_patch_shows_in_the_worst_tile_not_in_the_mean() {
        let a = plane(320, 176, |x, y| ((x * 3 + y * 5) % 256) as u8);
        let mut b = a.clone();
        for y in 16..48 {
            for x in 32..64 {
                b.data[y * 320 + x] = 255;
            }
        }
        let (m, s, worst) = luma(&a, &b, 32);
        assert!(psnr(m) > 20.0, "{}", psnr(m));
        assert!(psnr(worst) < 10.0, "{}", psnr(worst));
        assert!(s < 0.99 && s > 0.9, "{s}");
    }
}
