//! Before/after split view: two images under one transform (so zoom and pan stay in
//! sync on both sides), a draggable divider, mouse-wheel zoom around the cursor,
//! drag to pan, fit-to-window and 1:1 pixels.

use eframe::egui;

use egui::{
    Align2, Color32, FontId, Pos2, Rect, Response, Role, Sense, Stroke, Ui, Vec2, WidgetInfo, pos2,
    vec2,
};

use super::tiled::TiledTexture;

/// Pixels either side of the divider that grab it instead of panning.
const DIVIDER_GRAB: f32 = 8.0;

/// Zoom, pan and divider of a compare view (survives across frames).
#[derive(Debug, Clone, PartialEq)]
pub struct CompareView {
    /// Screen points per image pixel; `None` fits the image in the view.
    zoom: Option<f32>,
    /// Image pixel at the view centre, relative to the image centre.
    pan: Vec2,
    /// Divider position as a fraction of the view width.
    divider: f32,
    dragging_divider: bool,
}

impl Default for CompareView {
    fn default() -> Self {
        Self {
            zoom: None,
            pan: Vec2::ZERO,
            divider: 0.5,
            dragging_divider: false,
        }
    }
}

/// What to show on one side.
pub struct Side<'a> {
    /// The image, or `None` while it is not available.
    pub image: Option<&'a TiledTexture>,
    /// Caption drawn in the side's top corner.
    pub label: &'a str,
    /// Message drawn when the image is missing.
    pub status: &'a str,
}

impl CompareView {
    /// Fits the image to the view.
    pub fn fit(&mut self) {
        self.zoom = None;
        self.pan = Vec2::ZERO;
    }

    /// One image pixel per physical screen pixel.
    pub fn one_to_one(&mut self, pixels_per_point: f32) {
        self.zoom = Some(1.0 / pixels_per_point.max(0.1));
    }

    /// The zoom in use (None when fitting).
    pub fn zoom(&self) -> Option<f32> {
        self.zoom
    }

    /// Image pixel at the view centre, relative to the image centre.
    pub fn pan(&self) -> Vec2 {
        self.pan
    }

    /// Divider position as a fraction of the view width.
    pub fn divider(&self) -> f32 {
        self.divider
    }

    /// Draws the view in all the space left and handles its input.
    pub fn show(&mut self, ui: &mut Ui, left: Side<'_>, right: Side<'_>) -> Response {
        let rect = ui.available_rect_before_wrap();
        let response = ui.allocate_rect(rect, Sense::click_and_drag());
        response.widget_info(|| WidgetInfo::labeled(Role::Image, true, "Before and after view"));
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, Color32::from_gray(18));
        let Some(size) = left.image.or(right.image).map(TiledTexture::size) else {
            painter.text(
                rect.center(),
                Align2::CENTER_CENTER,
                left.status,
                FontId::proportional(16.0),
                Color32::GRAY,
            );
            return response;
        };
        let fit = (rect.width() / size.x.max(1.0))
            .min(rect.height() / size.y.max(1.0))
            .max(1e-4);
        let mut zoom = self.zoom.unwrap_or(fit);

        // Wheel / pinch zoom around the cursor.
        if let Some(pointer) = response.hover_pos() {
            let (scroll, pinch) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
            let factor = (scroll * 0.0025).exp() * pinch;
            if (factor - 1.0).abs() > 1e-4 {
                let new_zoom = (zoom * factor).clamp(fit.min(1.0) * 0.25, 64.0);
                let centre = rect.center() - self.pan * zoom;
                let under = (pointer - centre) / zoom; // image px from the image centre
                let new_centre = pointer - under * new_zoom;
                self.pan = (rect.center() - new_centre) / new_zoom;
                zoom = new_zoom;
                self.zoom = Some(zoom);
            }
        }
        let divider_x = rect.left() + self.divider * rect.width();
        if response.drag_started() {
            // Where the button went down, not where the pointer is now: a drag is
            // only recognised after some movement, by then a quick hand is past
            // the divider's grab zone.
            let origin = ui
                .input(|i| i.pointer.press_origin())
                .or(response.interact_pointer_pos());
            self.dragging_divider = origin.is_some_and(|p| (p.x - divider_x).abs() <= DIVIDER_GRAB);
        }
        if response.dragged() {
            if self.dragging_divider {
                if let Some(p) = response.interact_pointer_pos() {
                    self.divider = ((p.x - rect.left()) / rect.width().max(1.0)).clamp(0.0, 1.0);
                }
            } else {
                self.pan -= response.drag_delta() / zoom;
                self.zoom = Some(zoom);
            }
        }
        if response.drag_stopped() {
            self.dragging_divider = false;
        }
        if response.double_clicked() {
            self.fit();
            zoom = fit;
        }
        let hover_divider = response
            .hover_pos()
            .is_some_and(|p| (p.x - divider_x).abs() <= DIVIDER_GRAB);
        if hover_divider || self.dragging_divider {
            ui.ctx().set_cursor_icon(egui::CursorIcon::ResizeHorizontal);
        } else if response.dragged() {
            ui.ctx().set_cursor_icon(egui::CursorIcon::Grabbing);
        }

        let divider_x = rect.left() + self.divider * rect.width();
        let centre = rect.center() - self.pan * zoom;
        let image_rect = Rect::from_center_size(centre, size * zoom);
        let left_clip = Rect::from_min_max(rect.min, pos2(divider_x, rect.max.y));
        let right_clip = Rect::from_min_max(pos2(divider_x, rect.min.y), rect.max);
        for (side, clip) in [(&left, left_clip), (&right, right_clip)] {
            let p = painter.with_clip_rect(clip);
            match side.image {
                Some(img) => img.paint(&p, image_rect),
                None => {
                    p.text(
                        clip.center(),
                        Align2::CENTER_CENTER,
                        side.status,
                        FontId::proportional(15.0),
                        Color32::GRAY,
                    );
                }
            }
        }
        let stroke = Stroke::new(2.0, Color32::from_white_alpha(220));
        painter.line_segment(
            [pos2(divider_x, rect.top()), pos2(divider_x, rect.bottom())],
            stroke,
        );
        painter.circle_filled(
            pos2(divider_x, rect.center().y),
            7.0,
            Color32::from_white_alpha(230),
        );
        caption(
            &painter,
            pos2(rect.left() + 8.0, rect.top() + 8.0),
            Align2::LEFT_TOP,
            left.label,
        );
        caption(
            &painter,
            pos2(rect.right() - 8.0, rect.top() + 8.0),
            Align2::RIGHT_TOP,
            right.label,
        );
        let zoom_text = format!("{:.0}%", zoom * ui.ctx().pixels_per_point() * 100.0);
        caption(
            &painter,
            pos2(rect.right() - 8.0, rect.bottom() - 8.0),
            Align2::RIGHT_BOTTOM,
            &zoom_text,
        );
        response
    }
}

fn caption(painter: &egui::Painter, pos: Pos2, align: Align2, text: &str) {
    if text.is_empty() {
        return;
    }
    let galley =
        painter.layout_no_wrap(text.to_string(), FontId::proportional(13.0), Color32::WHITE);
    let r = align.anchor_size(pos, galley.size()).expand(4.0);
    painter.rect_filled(r, 3.0, Color32::from_black_alpha(170));
    painter.galley(r.min + vec2(4.0, 4.0), galley, Color32::WHITE);
}
