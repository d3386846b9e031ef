//! Images of any size as textures: split into tiles no GPU refuses, prepared off the
//! UI thread ([`PreparedImage`]) and uploaded once ([`TiledTexture`]).

use eframe::egui;

use egui::{
    Color32, ColorImage, Context, Painter, Rect, TextureHandle, TextureOptions, pos2, vec2,
};
use image::RgbImage;

/// Tile side: every wgpu / GL implementation supports textures at least this large.
pub const TILE_SIDE: usize = 2048;

/// Pixels ready for upload, cut into tiles. Built on a worker; plain data.
#[derive(Clone)]
pub struct PreparedImage {
    /// Full size in pixels `[width, height]`.
    pub size: [usize; 2],
    /// `(x, y, tile)`: each tile's top-left pixel and its pixels.
    pub tiles: Vec<(usize, usize, ColorImage)>,
}

impl std::fmt::Debug for PreparedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PreparedImage({}x{}, {} tiles)",
            self.size[0],
            self.size[1],
            self.tiles.len()
        )
    }
}

impl PreparedImage {
    /// Converts and tiles an RGB image (the pixel loop the UI thread must not run).
    pub fn from_rgb(img: &RgbImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut tiles = Vec::new();
        for y in (0..h.max(1)).step_by(TILE_SIDE) {
            for x in (0..w.max(1)).step_by(TILE_SIDE) {
                let (tw, th) = (TILE_SIDE.min(w - x), TILE_SIDE.min(h - y));
                let crop = image::imageops::crop_imm(img, x as u32, y as u32, tw as u32, th as u32)
                    .to_image();
                tiles.push((x, y, ColorImage::from_rgb([tw, th], crop.as_raw())));
            }
        }
        Self {
            size: [w, h],
            tiles,
        }
    }

    /// A single-tile image from an already-converted [`ColorImage`] (must be at most [`TILE_SIDE`]).
    pub fn from_color_image(image: ColorImage) -> Self {
        Self {
            size: image.size,
            tiles: vec![(0, 0, image)],
        }
    }
}

/// An uploaded [`PreparedImage`]. Cloning shares the textures.
#[derive(Clone)]
pub struct TiledTexture {
    size: [usize; 2],
    tiles: Vec<(Rect, TextureHandle)>,
}

impl std::fmt::Debug for TiledTexture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TiledTexture({}x{})", self.size[0], self.size[1])
    }
}

impl TiledTexture {
    /// Uploads every tile once. Magnified pixels stay sharp (for 1:1 and closer views);
    /// minification is smoothed.
    pub fn upload(ctx: &Context, name: &str, image: PreparedImage) -> Self {
        let options = TextureOptions {
            magnification: egui::TextureFilter::Nearest,
            minification: egui::TextureFilter::Linear,
            mipmap_mode: Some(egui::TextureFilter::Linear),
            ..TextureOptions::LINEAR
        };
        let tiles = image
            .tiles
            .into_iter()
            .enumerate()
            .map(|(i, (x, y, tile))| {
                let rect = Rect::from_min_size(
                    pos2(x as f32, y as f32),
                    vec2(tile.size[0] as f32, tile.size[1] as f32),
                );
                (rect, ctx.load_texture(format!("{name}#{i}"), tile, options))
            })
            .collect();
        Self {
            size: image.size,
            tiles,
        }
    }

    /// Size in pixels.
    pub fn size(&self) -> egui::Vec2 {
        vec2(self.size[0] as f32, self.size[1] as f32)
    }

    /// The texture of a single-tile image (thumbnails, samples), for `egui::Image`.
    pub fn single(&self) -> Option<&TextureHandle> {
        match self.tiles.as_slice() {
            [(_, t)] => Some(t),
            _ => None,
        }
    }

    /// Paints the whole image into `dest` (screen rect of the full image), clipped by the painter.
    pub fn paint(&self, painter: &Painter, dest: Rect) {
        let size = self.size();
        let scale = vec2(
            dest.width() / size.x.max(1.0),
            dest.height() / size.y.max(1.0),
        );
        let uv = Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0));
        for (rect, tex) in &self.tiles {
            let screen =
                Rect::from_min_size(dest.min + rect.min.to_vec2() * scale, rect.size() * scale);
            if painter.clip_rect().intersects(screen) {
                painter.image(tex.id(), screen, uv, Color32::WHITE);
            }
        }
    }
}
