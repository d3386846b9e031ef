//! Seam-free tiling on every device: the whole-image result, computed one window
//! at a time. The CPU engine runs the windows on Flex ([`CpuGenerator`]), memory
//! bounded by one tile; Burn ops run them everywhere else ([`convert_tiled_ops`]:
//! wgpu, where a whole 4K image would not fit the adapter's buffers), the tiles
//! advancing in lockstep so that each layer runs once per tile.
//!
//! Two things make plain tiling differ from the whole image: GroupNorm(1, C)
//! normalises each tile with its own statistics (a tone shift per tile), and the
//! align-corners upsampling samples a tile on a slightly different grid than the
//! whole image. Each window here runs on the whole image's grid (offsets are
//! multiples of 4, upsampling taps come from the whole image,
//! [`crate::model::cpu::Window`]) and normalises with whole-image statistics
//! gathered by earlier passes. On the CPU, pass `j` runs every tile up to norm layer `j`,
//! with layers before it already normalised exactly, and accumulates that
//! layer's moments over each tile's share of a partition of the image: exact
//! whole-image moments. 24 such passes, then the output pass, reproduce the
//! whole-image result (bit for bit away from tile edges, `tests/tiling.rs`).
//!
//! Cheaper schemes were measured and rejected (BENCHMARKS.md): reusing all 24
//! statistics of a previous full pass diverges (a stale statistic mis-scales its
//! layer, and the error grows down the network: 42, 22, 100, 231 /255 after 0-3
//! passes on the fixture generator), and a shift/scale-corrected variant stalls
//! near 50/255. Each output pixel comes from the tile whose share contains it, at
//! least half the overlap away from that tile's cut edges, where reflect padding
//! differs from the true neighbourhood.

use burn::tensor::Device;
use image::RgbImage;

use crate::model::Generator;
use crate::model::cpu::kernels::{Map, Moments};
use crate::model::cpu::{CpuGenerator, NORM_LAYERS, Window};
use crate::model::window_ops::{Paused, WindowPass};
use crate::tensor_image::{ReadbackError, images_to_tensor};

/// One tile along an axis: the window `[start, end)` and its share `[own0, own1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First pixel of the window (a multiple of 4).
    pub start: usize,
    /// One past its last pixel.
    pub end: usize,
    /// First pixel this tile contributes (a multiple of 4).
    pub own0: usize,
    /// One past the last pixel it contributes.
    pub own1: usize,
}

/// Tiles of about `tile` pixels covering `0..len` with at least `overlap` shared
/// pixels between neighbours; starts and shares begin on multiples of 4 (the
/// network's 1/4-resolution grid), and the shares partition `0..len`.
pub fn spans(len: usize, tile: usize, overlap: usize) -> Vec<Span> {
    if len <= tile {
        return vec![Span {
            start: 0,
            end: len,
            own0: 0,
            own1: len,
        }];
    }
    let stride = tile - overlap;
    let n = (len - overlap).div_ceil(stride);
    // As many tiles as `tile` needs, each only as long as the overlap requires:
    // 3840 px in 5 tiles of 1024 would compute 1.33x the pixels, of 872 only 1.13x.
    let tile = (len + (n - 1) * overlap).div_ceil(n).div_ceil(4) * 4;
    let tile = tile.min(len);
    let starts: Vec<usize> = (0..n)
        .map(|i| (i * (len - tile) / (n - 1)) / 4 * 4)
        .collect();
    let ends: Vec<usize> = (0..n)
        .map(|i| if i + 1 == n { len } else { starts[i] + tile })
        .collect();
    // Shares cut in the middle of each overlap.
    let cuts: Vec<usize> = (0..n - 1)
        .map(|i| (starts[i + 1] + ends[i]) / 2 / 4 * 4)
        .collect();
    (0..n)
        .map(|i| Span {
            start: starts[i],
            end: ends[i],
            own0: if i == 0 { 0 } else { cuts[i - 1] },
            own1: if i + 1 == n { len } else { cuts[i] },
        })
        .collect()
}

/// The whole of `img` as a `[3, h, w]` map in [-1, 1].
pub(crate) fn image_map(img: &RgbImage) -> Map {
    let full = |len: u32| Span {
        start: 0,
        end: len as usize,
        own0: 0,
        own1: len as usize,
    };
    crop_map(img, full(img.width()), full(img.height()))
}

fn crop_map(img: &RgbImage, x: Span, y: Span) -> Map {
    let (w, h) = (x.end - x.start, y.end - y.start);
    let mut m = Map::zeros(3, h, w);
    for ty in 0..h {
        for tx in 0..w {
            let p = img
                .get_pixel((x.start + tx) as u32, (y.start + ty) as u32)
                .0;
            for (c, &v) in p.iter().enumerate() {
                m.data[c * h * w + ty * w + tx] = v as f32 / 127.5 - 1.0;
            }
        }
    }
    m
}

/// Tiles covering a `w` x `h` image, row by row.
fn tile_grid(w: usize, h: usize, tile: usize, overlap: usize) -> Vec<(Span, Span)> {
    spans(h, tile, overlap)
        .into_iter()
        .flat_map(|y| spans(w, tile, overlap).into_iter().map(move |x| (y, x)))
        .collect()
}

/// Copies tile `(y, x)`'s share of its output `res` (`[3, th, tw]`) into `out`
/// (`[3, H, W]`, `full` = `[H, W]`).
fn write_share(
    out: &mut [f32],
    full: [usize; 2],
    res: &[f32],
    y: Span,
    x: Span,
) -> Result<(), ReadbackError> {
    let [h, w] = full;
    let (tw, th) = (x.end - x.start, y.end - y.start);
    if res.len() != 3 * th * tw {
        return Err(ReadbackError(format!(
            "a {tw}x{th} tile returned {} values",
            res.len()
        )));
    }
    for c in 0..3 {
        for gy in y.own0..y.own1 {
            let src = &res[c * th * tw + (gy - y.start) * tw..][..tw];
            let dst = &mut out[c * h * w + gy * w..][..w];
            dst[x.own0..x.own1].copy_from_slice(&src[x.own0 - x.start..x.own1 - x.start]);
        }
    }
    Ok(())
}

/// Runs every tile once, normalising the first `stats.len()` norm layers with
/// those whole-image statistics, and returns the moments gathered over the
/// tiles' shares (a partition: whole-image moments). With `stop_after` each tile
/// stops after that norm layer; otherwise each tile's share of the output is
/// written into `out` (`[3, H, W]` floats).
fn pass(
    g: &CpuGenerator,
    img: &RgbImage,
    grid: &[(Span, Span)],
    stats: &[Moments],
    stop_after: Option<usize>,
    mut out: Option<&mut [f32]>,
) -> Result<Vec<Moments>, ReadbackError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut total = vec![Moments::default(); NORM_LAYERS];
    for &(y, x) in grid {
        let mut win = Window {
            full: [h, w],
            origin: [y.start, x.start],
            stats: stats.to_vec(),
            stop_after,
            interior: [
                y.own0 - y.start,
                y.own1 - y.start,
                x.own0 - x.start,
                x.own1 - x.start,
            ],
            record: vec![Moments::default(); NORM_LAYERS],
        };
        let stops = win.stop_after.is_some();
        let res = g.forward(crop_map(img, x, y), Some(&mut win));
        let res = (!stops).then_some(res.data);
        for (t, r) in total.iter_mut().zip(&win.record) {
            *t = t.merge(*r);
        }
        if let (Some(out), Some(res)) = (out.as_deref_mut(), res) {
            write_share(out, [h, w], &res, y, x)?;
        }
    }
    Ok(total)
}

/// Converts `img` (already padded as the whole-image path pads it) tile by tile
/// with the CPU engine, one tile in memory at a time.
/// The first `exact_layers` norm layers (of [`NORM_LAYERS`]) get whole-image
/// statistics, one gathering pass each (a pass stops at its layer, so early
/// layers are cheap; all 24 cost about 5 whole-network passes), the rest each
/// tile's own. Returns `[3, H, W]` floats in [-1, 1].
///
/// # Errors
/// A value that cannot be read back from the device.
pub fn convert_tiled(
    g: &CpuGenerator,
    img: &RgbImage,
    tile: usize,
    overlap: usize,
    exact_layers: usize,
) -> Result<Vec<f32>, ReadbackError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let grid = tile_grid(w, h, tile, overlap);
    let mut stats = Vec::new();
    for layer in 0..exact_layers.min(NORM_LAYERS) {
        let gathered = pass(g, img, &grid, &stats, Some(layer), None)?;
        stats.push(gathered[layer]);
    }
    let mut out = vec![0f32; 3 * h * w];
    pass(g, img, &grid, &stats, None, Some(&mut out))?;
    Ok(out)
}

/// Converts `img` (already padded as the whole-image path pads it) tile by tile
/// with Burn ops on `device` (wgpu), the tiles advancing in lockstep
/// ([`WindowPass`]): each layer runs once per tile, and each of the first
/// `exact_layers` norm layers pauses every tile at its input to gather the whole
/// image's moments over the tiles' shares; later layers use each tile's own (the
/// tests' control). Between layers, paused tiles keep up to `resident_bytes` of
/// their maps on the device and move the rest to host memory. Returns `[3, H, W]`
/// floats in [-1, 1].
///
/// # Errors
/// A value that cannot be read back from the device.
pub fn convert_tiled_ops(
    g: &Generator,
    device: &Device,
    img: &RgbImage,
    tile: usize,
    overlap: usize,
    exact_layers: usize,
    resident_bytes: usize,
) -> Result<Vec<f32>, ReadbackError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let grid = tile_grid(w, h, tile, overlap);
    let mut passes: Vec<WindowPass> = grid
        .iter()
        .map(|&(y, x)| {
            let crop = image::imageops::crop_imm(
                img,
                x.start as u32,
                y.start as u32,
                (x.end - x.start) as u32,
                (y.end - y.start) as u32,
            )
            .to_image();
            WindowPass::new(
                images_to_tensor(std::slice::from_ref(&crop), device),
                [h, w],
                [y.start, x.start],
                [
                    y.own0 - y.start,
                    y.own1 - y.start,
                    x.own0 - x.start,
                    x.own1 - x.start,
                ],
            )
        })
        .collect();
    let exact = exact_layers.min(NORM_LAYERS);
    let mut stats: Vec<Moments> = Vec::new();
    loop {
        let mut gathered: Option<Moments> = None;
        // Paused tiles keep their maps on the device up to `resident_bytes`; the
        // rest wait in host memory (one tile's maps must fit the device anyway).
        let mut resident = 0;
        for p in &mut passes {
            if let Paused::AtNorm(m) = p.advance(g, &stats, exact)? {
                gathered = Some(gathered.unwrap_or_default().merge(m));
            }
            let bytes = p.device_bytes();
            if resident + bytes > resident_bytes {
                p.park()?;
            } else {
                resident += bytes;
            }
        }
        match gathered {
            Some(m) => stats.push(m),
            None => break,
        }
    }
    let mut out = vec![0f32; 3 * h * w];
    for (p, &(y, x)) in passes.into_iter().zip(&grid) {
        let res = p.output()?;
        write_share(&mut out, [h, w], &res, y, x)?;
    }
    Ok(out)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_partition_on_multiples_of_four() {
        for (len, tile, overlap) in [
            (1024, 512, 64),
            (2160, 1024, 64),
            (1001, 300, 64),
            (97, 64, 16),
        ] {
            let s = spans(len, tile, overlap);
            assert_eq!(s[0].own0, 0);
            assert_eq!(s.last().unwrap().own1, len);
            assert_eq!(s.last().unwrap().end, len);
            for (a, b) in s.iter().zip(s.iter().skip(1)) {
                assert_eq!(a.own1, b.own0);
                assert_eq!(b.start % 4, 0);
                assert_eq!(b.own0 % 4, 0);
                // Every share keeps a margin of about half the overlap from cut edges.
                assert!(a.end - a.own1 >= overlap / 2 - 4, "{a:?} {b:?}");
                assert!(b.own0 - b.start >= overlap / 2 - 4, "{a:?} {b:?}");
            }
            for sp in &s {
                assert!(sp.end - sp.start <= tile + 3);
            }
        }
    }
}
