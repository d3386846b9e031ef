//! Dataset panel: the photo and style folders (dialog or drop), their counts, lazily
//! decoded thumbnail strips, skipped files with reasons, and a style image beside
//! the grayscale and edge-smoothed variants the discriminator is shown as fakes.

use eframe::egui;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use egui::{
    Color32, Pos2, Rect, RichText, Role, Sense, Stroke, TextureHandle, TextureOptions, Ui,
    WidgetInfo, vec2,
};

use crate::app::command::UiCommand;
use crate::app::state::Settings;
use crate::app::widgets::tiled::color_image;
use crate::app::worker::{
    DialogKind, DialogPurpose, FolderRole, ImageRequest, JobRequest, Rgba8, ScanSummary,
    THUMBNAIL_SIDE, WorkerRequest,
};

/// Height of a thumbnail cell.
const CELL: f32 = THUMBNAIL_SIDE as f32;
/// Gap between thumbnails.
const GAP: f32 = 6.0;
/// Thumbnails requested beyond each edge of the visible strip.
const PREFETCH: usize = 4;

/// Where a scan stands.
#[derive(Debug, Clone)]
pub enum ScanState {
    /// Waiting for the worker.
    Scanning,
    /// Done.
    Ready(ScanSummary),
    /// The folder is unusable.
    Failed(String),
}

enum Thumb {
    Requested,
    Ready(TextureHandle),
    Failed(String),
}

fn images(n: usize) -> String {
    if n == 1 {
        "1 image".to_string()
    } else {
        format!("{n} images")
    }
}

/// One training folder as the panel shows it.
pub struct FolderView {
    generation: u64,
    dir: PathBuf,
    scan: ScanState,
    thumbs: HashMap<usize, Thumb>,
}

impl FolderView {
    fn new() -> Self {
        Self {
            generation: 0,
            dir: PathBuf::new(),
            scan: ScanState::Scanning,
            thumbs: HashMap::new(),
        }
    }

    /// The scan result.
    pub fn scan(&self) -> &ScanState {
        &self.scan
    }

    /// The folder scanned.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One line: `12 images, 2 skipped` or the problem.
    pub fn summary(&self) -> String {
        match &self.scan {
            ScanState::Scanning => "scanning...".to_string(),
            ScanState::Ready(s) if s.skipped.is_empty() => images(s.files.len()),
            ScanState::Ready(s) => {
                format!("{}, {} skipped", images(s.files.len()), s.skipped.len())
            }
            ScanState::Failed(e) => format!("unusable: {e}"),
        }
    }

    /// Whether the folder has usable images.
    pub fn is_usable(&self) -> bool {
        matches!(&self.scan, ScanState::Ready(s) if !s.files.is_empty())
    }
}

enum Variants {
    None,
    Loading {
        path: PathBuf,
        size: u32,
    },
    Ready {
        path: PathBuf,
        size: u32,
        textures: [TextureHandle; 3],
    },
    Failed {
        path: PathBuf,
        size: u32,
        error: String,
    },
}

/// The dataset panel's runtime state.
pub struct DatasetPanel {
    folders: [FolderView; 2],
    next_generation: u64,
    selected_style: Option<usize>,
    variants: Variants,
    zones: [Option<Rect>; 2],
}

impl Default for DatasetPanel {
    fn default() -> Self {
        Self {
            folders: [FolderView::new(), FolderView::new()],
            next_generation: 1,
            selected_style: None,
            variants: Variants::None,
            zones: [None, None],
        }
    }
}

fn slot(role: FolderRole) -> usize {
    match role {
        FolderRole::Photos => 0,
        FolderRole::Style => 1,
    }
}

impl DatasetPanel {
    /// The view of one folder.
    pub fn folder(&self, role: FolderRole) -> &FolderView {
        &self.folders[slot(role)]
    }

    /// Forgets `role`'s results and returns the command that scans `dir`.
    pub fn rescan(&mut self, role: FolderRole, dir: &Path) -> JobRequest {
        let generation = self.next_generation;
        self.next_generation += 1;
        let view = &mut self.folders[slot(role)];
        view.generation = generation;
        view.dir = dir.to_path_buf();
        view.scan = ScanState::Scanning;
        view.thumbs.clear();
        if role == FolderRole::Style {
            self.selected_style = None;
            self.variants = Variants::None;
        }
        JobRequest::Scan {
            role,
            generation,
            dir: dir.to_path_buf(),
        }
    }

    /// Takes a scan result (ignored when a newer scan was started).
    pub fn on_scanned(
        &mut self,
        role: FolderRole,
        generation: u64,
        result: Result<ScanSummary, String>,
    ) {
        let view = &mut self.folders[slot(role)];
        if view.generation != generation {
            return;
        }
        view.scan = match result {
            Ok(s) => ScanState::Ready(s),
            Err(e) => ScanState::Failed(e),
        };
        if role == FolderRole::Style && view.is_usable() {
            self.selected_style = Some(0);
        }
    }

    /// Uploads a decoded thumbnail once.
    pub fn on_thumbnail(
        &mut self,
        ctx: &egui::Context,
        role: FolderRole,
        generation: u64,
        index: usize,
        result: Result<Rgba8, String>,
    ) {
        let view = &mut self.folders[slot(role)];
        if view.generation != generation {
            return;
        }
        let thumb = match result {
            Ok(img) => Thumb::Ready(ctx.load_texture(
                format!("thumb-{}-{generation}-{index}", role.label()),
                color_image(&img),
                TextureOptions::LINEAR,
            )),
            Err(e) => Thumb::Failed(e),
        };
        view.thumbs.insert(index, thumb);
    }

    /// Uploads the style variants when they are still the ones wanted.
    pub fn on_variants(
        &mut self,
        ctx: &egui::Context,
        path: PathBuf,
        result: Result<[Rgba8; 3], String>,
    ) {
        let Variants::Loading { path: wanted, size } = &self.variants else {
            return;
        };
        if *wanted != path {
            return;
        }
        let size = *size;
        self.variants = match result {
            Ok([a, b, c]) => {
                let up = |name: &str, img: Rgba8| {
                    ctx.load_texture(
                        format!("variant-{name}"),
                        color_image(&img),
                        TextureOptions::LINEAR,
                    )
                };
                Variants::Ready {
                    path,
                    size,
                    textures: [up("color", a), up("gray", b), up("smooth", c)],
                }
            }
            Err(error) => Variants::Failed { path, size, error },
        };
    }

    /// The folder whose box contains `pos` (for folders dropped on the panel).
    pub fn drop_target(&self, pos: Option<Pos2>) -> Option<FolderRole> {
        let pos = pos?;
        [FolderRole::Photos, FolderRole::Style]
            .into_iter()
            .find(|r| self.zones[slot(*r)].is_some_and(|z| z.contains(pos)))
    }

    /// Forgets the drop zones (called when the panel is not shown).
    pub fn hide(&mut self) {
        self.zones = [None, None];
    }

    /// Draws the panel.
    pub fn ui(&mut self, ui: &mut Ui, settings: &Settings, locked: bool, out: &mut Vec<UiCommand>) {
        ui.horizontal(|ui| {
            ui.heading("Dataset");
            let demo = crate::train::TrainConfig::default();
            let is_demo = settings.train.photos_dir == demo.photos_dir
                && settings.train.style_dir == demo.style_dir;
            let r = ui.add_enabled(!locked && !is_demo, egui::Button::new("Use demo dataset"));
            if r.clicked() {
                out.push(UiCommand::SetFolder(
                    FolderRole::Photos,
                    demo.photos_dir.clone(),
                ));
                out.push(UiCommand::SetFolder(
                    FolderRole::Style,
                    demo.style_dir.clone(),
                ));
            }
        });
        ui.label("Choose folders with the buttons or drop a folder on its box. Folders are searched recursively.");
        if locked {
            ui.colored_label(
                Color32::from_rgb(240, 190, 80),
                "A run is active: folder changes apply to the next run.",
            );
        }
        ui.add_space(4.0);
        let hovering_files = ui.input(|i| !i.raw.hovered_files.is_empty());
        let pointer = ui.input(|i| i.pointer.latest_pos());
        let image_size = settings.train.image_size as u32;
        egui::ScrollArea::vertical()
            .id_salt("dataset-scroll")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                for role in [FolderRole::Photos, FolderRole::Style] {
                    let highlight = hovering_files
                        && self.zones[slot(role)]
                            .zip(pointer)
                            .is_some_and(|(z, p)| z.contains(p));
                    let stroke = if highlight {
                        Stroke::new(2.0, ui.visuals().selection.stroke.color)
                    } else {
                        ui.visuals().widgets.noninteractive.bg_stroke
                    };
                    let response = egui::Frame::group(ui.style())
                        .stroke(stroke)
                        .show(ui, |ui| {
                            ui.set_width(ui.available_width());
                            self.folder_ui(ui, role, out);
                        })
                        .response;
                    self.zones[slot(role)] = Some(response.rect);
                    if role == FolderRole::Style {
                        self.variants_ui(ui, image_size, out);
                    }
                    ui.add_space(8.0);
                }
            });
    }

    fn folder_ui(&mut self, ui: &mut Ui, role: FolderRole, out: &mut Vec<UiCommand>) {
        let view = &self.folders[slot(role)];
        ui.horizontal(|ui| {
            ui.label(RichText::new(role.label()).strong());
            ui.monospace(view.dir.display().to_string());
        });
        ui.horizontal(|ui| {
            ui.label(view.summary());
            let (choose, rescan) = match role {
                FolderRole::Photos => ("Choose photo folder...", "Rescan photos"),
                FolderRole::Style => ("Choose style folder...", "Rescan style images"),
            };
            if ui.button(choose).clicked() {
                out.push(UiCommand::Worker(WorkerRequest::Job(JobRequest::Dialog {
                    purpose: DialogPurpose::Folder(role),
                    kind: DialogKind::PickFolder,
                    start_dir: Some(view.dir.clone()),
                })));
            }
            if ui.button(rescan).clicked() {
                out.push(UiCommand::SetFolder(role, view.dir.clone()));
            }
        });
        if matches!(view.scan, ScanState::Scanning) {
            ui.spinner();
        }
        self.strip_ui(ui, role, out);
        let view = &self.folders[slot(role)];
        if let ScanState::Ready(s) = &view.scan
            && !s.skipped.is_empty()
        {
            egui::CollapsingHeader::new(format!(
                "Skipped {} files ({})",
                role.label().to_lowercase(),
                s.skipped.len()
            ))
            .id_salt(("skipped", role.label()))
            .default_open(true)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt(("skipped-list", role.label()))
                    .max_height(160.0)
                    .show(ui, |ui| {
                        for f in &s.skipped {
                            let name = f
                                .path
                                .file_name()
                                .map(|n| n.to_string_lossy().to_string())
                                .unwrap_or_default();
                            ui.label(format!("{name}: {}", f.reason))
                                .on_hover_text(f.path.display().to_string());
                        }
                    });
            });
        }
    }

    fn strip_ui(&mut self, ui: &mut Ui, role: FolderRole, out: &mut Vec<UiCommand>) {
        let s = slot(role);
        let ScanState::Ready(summary) = &self.folders[s].scan else {
            return;
        };
        let files = summary.files.clone();
        let generation = self.folders[s].generation;
        let mut clicked = None;
        egui::ScrollArea::horizontal()
            .id_salt(("strip", role.label()))
            .auto_shrink([false, true])
            .show_viewport(ui, |ui, viewport| {
                let n = files.len();
                let (rect, _) =
                    ui.allocate_exact_size(vec2(n as f32 * (CELL + GAP), CELL), Sense::hover());
                let first = ((viewport.min.x / (CELL + GAP)).floor().max(0.0) as usize)
                    .saturating_sub(PREFETCH);
                let last =
                    (((viewport.max.x / (CELL + GAP)).ceil().max(0.0) as usize) + PREFETCH).min(n);
                for (index, path) in files.iter().enumerate().take(last).skip(first) {
                    let cell = Rect::from_min_size(
                        rect.min + vec2(index as f32 * (CELL + GAP), 0.0),
                        vec2(CELL, CELL),
                    );
                    let view = &mut self.folders[s];
                    let thumb = view.thumbs.entry(index).or_insert_with(|| {
                        out.push(UiCommand::Worker(WorkerRequest::Images(
                            ImageRequest::Thumbnail {
                                role,
                                generation,
                                index,
                                path: path.clone(),
                            },
                        )));
                        Thumb::Requested
                    });
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    let id = ui.make_persistent_id(("thumb", role.label(), index));
                    // Style thumbnails are buttons (they pick the image shown with its variants).
                    let (sense, role_kind) = if role == FolderRole::Style {
                        (Sense::click(), Role::Button)
                    } else {
                        (Sense::hover(), Role::Image)
                    };
                    let response = ui.interact(cell, id, sense);
                    response.widget_info(|| WidgetInfo::labeled(role_kind, true, &name));
                    let painter = ui.painter_at(cell);
                    match thumb {
                        Thumb::Ready(tex) => {
                            let size = tex.size_vec2();
                            let fit = (CELL / size.x.max(size.y).max(1.0)).min(1.0);
                            let r = Rect::from_center_size(cell.center(), size * fit);
                            painter.image(
                                tex.id(),
                                r,
                                Rect::from_min_max(Pos2::ZERO, egui::pos2(1.0, 1.0)),
                                Color32::WHITE,
                            );
                        }
                        Thumb::Requested => {
                            painter.rect_filled(cell, 4.0, ui.visuals().faint_bg_color);
                        }
                        Thumb::Failed(_) => {
                            painter.rect_filled(cell, 4.0, Color32::from_rgb(80, 30, 30));
                        }
                    }
                    let selected = role == FolderRole::Style && self.selected_style == Some(index);
                    if selected || response.hovered() {
                        painter.rect_stroke(
                            cell,
                            4.0,
                            Stroke::new(2.0, ui.visuals().selection.stroke.color),
                            egui::StrokeKind::Inside,
                        );
                    }
                    let hover = match &self.folders[s].thumbs.get(&index) {
                        Some(Thumb::Failed(e)) => format!("{name}: {e}"),
                        _ => name,
                    };
                    let response = response.on_hover_text(hover);
                    if response.clicked() {
                        clicked = Some(index);
                    }
                }
            });
        if let Some(i) = clicked {
            self.selected_style = Some(i);
        }
    }

    fn variants_ui(&mut self, ui: &mut Ui, size: u32, out: &mut Vec<UiCommand>) {
        let ScanState::Ready(summary) = &self.folders[1].scan else {
            return;
        };
        let Some(path) = self
            .selected_style
            .and_then(|i| summary.files.get(i))
            .cloned()
        else {
            return;
        };
        let current = match &self.variants {
            Variants::Loading { path: p, size: s }
            | Variants::Ready {
                path: p, size: s, ..
            }
            | Variants::Failed {
                path: p, size: s, ..
            } => *p == path && *s == size,
            Variants::None => false,
        };
        if !current {
            self.variants = Variants::Loading {
                path: path.clone(),
                size,
            };
            out.push(UiCommand::Worker(WorkerRequest::Images(
                ImageRequest::StyleVariants {
                    path: path.clone(),
                    size,
                },
            )));
        }
        ui.add_space(6.0);
        ui.label(RichText::new("What the discriminator sees").strong());
        ui.label(format!(
            "{} at training size ({size} px): the colour image is a real style example; its grayscale and its \
             edge-smoothed grayscale are shown to the discriminator as fakes, teaching it that anime needs colour and crisp edges.",
            path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
        ));
        match &self.variants {
            Variants::Ready { textures, .. } => {
                let side = (size as f32)
                    .min(220.0)
                    .min((ui.available_width() - 24.0) / 3.0)
                    .max(48.0);
                ui.horizontal(|ui| {
                    for (tex, caption) in textures.iter().zip([
                        "Colour (real)",
                        "Grayscale (fake)",
                        "Edge-smoothed (fake)",
                    ]) {
                        ui.vertical(|ui| {
                            ui.add(
                                egui::Image::new((tex.id(), vec2(side, side))).alt_text(caption),
                            );
                            ui.label(caption);
                        });
                    }
                });
            }
            Variants::Loading { .. } => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Computing variants...");
                });
            }
            Variants::Failed { error, .. } => {
                ui.colored_label(
                    Color32::from_rgb(255, 110, 100),
                    format!("Cannot show this image: {error}"),
                );
            }
            Variants::None => {}
        }
    }
}
