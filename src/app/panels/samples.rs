//! Sample timeline: the same validation photos at every sample step (step 0
//! included), a slider to scrub back through history, and a click on a cell to open
//! it in the compare view. Textures are uploaded once per image.
//!
//! At most [`MAX_SETS`] steps are kept: when full, every other step between the
//! first and the newest is dropped, so memory stays bounded on long runs.

use eframe::egui;

use egui::{Color32, Role, Sense, Stroke, Ui, WidgetInfo, vec2};

use crate::app::command::UiCommand;
use crate::app::widgets::tiled::TiledTexture;
use crate::app::worker::SampleSet;
use crate::app::worker::TiledPixels;

/// Sample steps kept in memory.
pub const MAX_SETS: usize = 120;

/// One sample step's outputs.
#[derive(Debug, Clone)]
pub struct TimelineEntry {
    /// Step.
    pub step: usize,
    /// Generator outputs, one per validation photo.
    pub outputs: Vec<TiledTexture>,
}

/// The timeline's runtime state.
#[derive(Debug, Default)]
pub struct SamplesPanel {
    inputs: Vec<TiledTexture>,
    entries: Vec<TimelineEntry>,
    /// Index shown; `None` follows the newest step.
    cursor: Option<usize>,
}

impl SamplesPanel {
    /// Forgets the previous run.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Steps held.
    pub fn steps(&self) -> Vec<usize> {
        self.entries.iter().map(|e| e.step).collect()
    }

    /// Uploads a sample set (once) and appends it.
    pub fn push(&mut self, ctx: &egui::Context, set: SampleSet) {
        let same_inputs = self.inputs.len() == set.inputs.len()
            && self
                .inputs
                .iter()
                .zip(&set.inputs)
                .all(|(t, i)| t.size() == vec2(i.size[0] as f32, i.size[1] as f32));
        if !same_inputs {
            self.inputs = set
                .inputs
                .into_iter()
                .enumerate()
                .map(|(i, img)| {
                    TiledTexture::upload(
                        ctx,
                        &format!("sample-input-{i}"),
                        &TiledPixels::single(img),
                    )
                })
                .collect();
        }
        let outputs = set
            .outputs
            .into_iter()
            .enumerate()
            .map(|(i, img)| {
                TiledTexture::upload(
                    ctx,
                    &format!("sample-{}-{i}", set.step),
                    &TiledPixels::single(img),
                )
            })
            .collect();
        // A resumed run re-sends the step it resumed at: replace rather than duplicate.
        self.entries.retain(|e| e.step != set.step);
        let at = self.entries.partition_point(|e| e.step < set.step);
        self.entries.insert(
            at,
            TimelineEntry {
                step: set.step,
                outputs,
            },
        );
        if self.entries.len() > MAX_SETS {
            let last = self.entries.len() - 1;
            let mut i = 0;
            self.entries.retain(|_| {
                let keep = i == 0 || i == last || i % 2 == 0;
                i += 1;
                keep
            });
            self.cursor = self
                .cursor
                .map(|c| c.min(self.entries.len().saturating_sub(1)));
        }
    }

    /// The photo and output textures of a cell.
    pub fn cell(&self, step: usize, index: usize) -> Option<(TiledTexture, TiledTexture)> {
        let entry = self.entries.iter().find(|e| e.step == step)?;
        Some((
            self.inputs.get(index)?.clone(),
            entry.outputs.get(index)?.clone(),
        ))
    }

    /// Draws the panel in the space given.
    pub fn ui(&mut self, ui: &mut Ui, sample_every: usize, out: &mut Vec<UiCommand>) {
        ui.horizontal(|ui| {
            ui.strong("Samples");
            if self.entries.is_empty() {
                ui.weak(format!(
                    "The validation photos appear at step 0 and every {sample_every} steps."
                ));
            }
        });
        if self.entries.is_empty() {
            return;
        }
        let last = self.entries.len() - 1;
        let mut index = self.cursor.unwrap_or(last).min(last);
        let steps: Vec<usize> = self.steps();
        ui.horizontal(|ui| {
            let slider = egui::Slider::new(&mut index, 0..=last)
                .text("Sample step")
                .custom_formatter(|v, _| {
                    format!(
                        "step {}",
                        steps.get(v.round() as usize).copied().unwrap_or(0)
                    )
                })
                .custom_parser(|s| {
                    let wanted: usize = s.trim().trim_start_matches("step").trim().parse().ok()?;
                    Some(
                        steps
                            .iter()
                            .position(|st| *st >= wanted)
                            .unwrap_or(steps.len().saturating_sub(1))
                            as f64,
                    )
                });
            if ui.add_enabled(last > 0, slider).changed() {
                self.cursor = if index == last { None } else { Some(index) };
            }
            let mut follow = self.cursor.is_none();
            if ui.checkbox(&mut follow, "Follow newest").changed() {
                self.cursor = if follow { None } else { Some(index) };
            }
        });
        let cols = self.inputs.len().max(1);
        let side = ((ui.available_width() - 90.0) / cols as f32 - 6.0).clamp(48.0, 160.0);
        let rows_fit = ((ui.available_height() - side - 8.0) / (side + 6.0))
            .floor()
            .max(1.0) as usize;
        let first = (index + 1).saturating_sub(rows_fit.min(4));
        egui::ScrollArea::vertical()
            .id_salt("samples-scroll")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                egui::Grid::new("sample-grid")
                    .spacing(vec2(6.0, 6.0))
                    .show(ui, |ui| {
                        ui.label("Photos");
                        for (i, tex) in self.inputs.iter().enumerate() {
                            if let Some(t) = tex.single() {
                                ui.add(
                                    egui::Image::new((t.id(), vec2(side, side)))
                                        .alt_text(format!("validation photo {}", i + 1)),
                                );
                            }
                        }
                        ui.end_row();
                        for entry in self.entries[first..=index].iter().rev() {
                            ui.label(format!("step {}", entry.step));
                            for (i, tex) in entry.outputs.iter().enumerate() {
                                let (rect, response) =
                                    ui.allocate_exact_size(vec2(side, side), Sense::click());
                                let label = format!("sample step {} photo {}", entry.step, i + 1);
                                response.widget_info(|| {
                                    WidgetInfo::labeled(Role::Button, true, &label)
                                });
                                tex.paint(ui.painter(), rect);
                                if response.hovered() {
                                    ui.painter().rect_stroke(
                                        rect,
                                        2.0,
                                        Stroke::new(2.0, Color32::WHITE),
                                        egui::StrokeKind::Inside,
                                    );
                                }
                                if response.on_hover_text("Open in the compare view").clicked() {
                                    out.push(UiCommand::OpenSample {
                                        step: entry.step,
                                        index: i,
                                    });
                                }
                            }
                            ui.end_row();
                        }
                    });
            });
    }
}
