//! Images of any size as textures: split into tiles no GPU refuses, prepared off the
//! UI thread ([`TiledPixels`]) and uploaded once ([`TiledTexture`]).

use eframe::egui;

use egui::{
    Color32, ColorImage, Context, Painter, Rect, TextureHandle, TextureOptions, pos2, vec2,
};

use crate::app::worker::{Rgba8, TiledPixels};

/// An opaque RGBA buffer from a worker as an egui image. The bytes are already
/// premultiplied (alpha is 255), so this is a copy, not a pixel loop.
pub fn color_image(pixels: &Rgba8) -> ColorImage {
    ColorImage::from_rgba_premultiplied(pixels.size, &pixels.rgba)
}

/// An uploaded [`TiledPixels`]. Cloning shares the textures.
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
    pub fn upload(ctx: &Context, name: &str, image: &TiledPixels) -> Self {
        let options = TextureOptions {
            magnification: egui::TextureFilter::Nearest,
            minification: egui::TextureFilter::Linear,
            mipmap_mode: Some(egui::TextureFilter::Linear),
            ..TextureOptions::LINEAR
        };
        let tiles = image
            .tiles
            .iter()
            .enumerate()
            .map(|(i, (x, y, tile))| {
                let rect = Rect::from_min_size(
                    pos2(*x as f32, *y as f32),
                    vec2(tile.size[0] as f32, tile.size[1] as f32),
                );
                let texture = ctx.load_texture(format!("{name}#{i}"), color_image(tile), options);
                (rect, texture)
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
