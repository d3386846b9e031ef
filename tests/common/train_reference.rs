//! Step equivalence with the PyTorch reference (tests/fixtures/make_train_fixtures.py):
//! builds photo2anime's G, D and VGG with the fixture's formula weights, drives the
//! real training step code (`photo2anime::train::step::Networks`) on the pinned
//! batches and measures every loss term, every parameter tensor's update and the
//! spectral-norm `u` against what PyTorch recorded.
//!
//! Shared by tests/train_step.rs (Flex) and tests/wgpu.rs (wgpu), which include it
//! with `#[path = "common/train_reference.rs"] mod train_reference;` next to
//! `mod common;` (so the other test binaries do not compile it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::HashMap;

use burn::module::Module;
use burn::tensor::{Device, TensorData};
use photo2anime::data::Batch;
use photo2anime::interop::params::{collect_params, param_shapes, replace_params};
use photo2anime::model::{DiscriminatorConfig, GeneratorConfig, Vgg19};
use photo2anime::train::step::Networks;
use photo2anime::train::{LiveParams, LossValues};
use safetensors::{Dtype, SafeTensors};

use crate::common::{fixture, nan_fails_rel, nan_fails_rel_l2};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
const SKETCH_SALT: u64 = 0xD1B5_4A32_D192_ED03;

/// FNV-1a 64 of a parameter path: the per-tensor seed of the weight formula.
pub fn fnv1a64(s: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// splitmix64 of `seed + (i + 1) * GOLDEN` (wrapping), as in the Python script.
pub fn splitmix(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add((i + 1).wrapping_mul(GOLDEN));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` values uniform with standard deviation `std` (f64, same operations as numpy).
fn uniform(path: &str, n: usize, std: f64) -> Vec<f64> {
    let seed = fnv1a64(path);
    let a = 3.0f64.sqrt() * std;
    (0..n as u64)
        .map(|i| {
            let u = (splitmix(seed, i) >> 11) as f64 * 2.0f64.powi(-53);
            (2.0 * u - 1.0) * a
        })
        .collect()
}

/// Which network a parameter belongs to (the formula's std depends on it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Net {
    G,
    D,
    Vgg,
}

/// The fixture's starting value of one parameter (see `spec` in the Python script).
pub fn spec(net: Net, path: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let fan_in = || (shape[1] * shape[2] * shape[3]) as f64;
    let v: Vec<f64> = if path.ends_with(".gamma") {
        uniform(path, n, 0.1).into_iter().map(|x| 1.0 + x).collect()
    } else if path.ends_with(".beta") || (net == Net::G && path.ends_with(".bias")) {
        uniform(path, n, 0.1)
    } else if net == Net::G {
        uniform(path, n, 1.0 / fan_in().sqrt())
    } else if net == Net::D && path.ends_with(".u") {
        let v = uniform(path, n, 1.0);
        let mut acc = 0.0;
        for x in &v {
            acc += x * x;
        }
        let norm = acc.sqrt();
        v.into_iter().map(|x| x / norm).collect()
    } else if net == Net::D {
        uniform(path, n, 0.02)
    } else if path.ends_with(".bias") {
        uniform(path, n, 0.01)
    } else {
        uniform(path, n, (2.0 / fan_in()).sqrt())
    };
    v.into_iter().map(|x| x as f32).collect()
}

/// Element indices the fixture stores for a tensor of `n` elements.
pub fn sample_indices(n: usize, full_max: usize, sample: usize) -> Vec<usize> {
    if n <= full_max {
        return (0..n).collect();
    }
    let s = n / sample;
    (0..sample).map(|j| j * s + (j * 7919) % s).collect()
}

/// The fixture's random-sign projections of a flattened update.
pub fn sketch(path: &str, upd: &[f64], k: usize) -> Vec<f64> {
    let base = fnv1a64(path);
    (0..k as u64)
        .map(|k| {
            let seed = base ^ (k + 1).wrapping_mul(SKETCH_SALT);
            upd.iter()
                .enumerate()
                .map(|(i, x)| {
                    if splitmix(seed, i as u64) >> 63 == 0 {
                        *x
                    } else {
                        -*x
                    }
                })
                .sum()
        })
        .collect()
}

/// reference.safetensors, decoded once.
pub struct Reference {
    tensors: HashMap<String, Vec<f64>>,
    meta: HashMap<String, String>,
}

impl Reference {
    pub fn load() -> Self {
        let path = fixture("train_step/reference.safetensors");
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run make_train_fixtures.py)", path.display()));
        let (_, meta) = SafeTensors::read_metadata(&bytes).expect("safetensors header");
        let meta = meta.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(&bytes).expect("safetensors");
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let d = view.data();
                let v = match view.dtype() {
                    Dtype::F32 => d
                        .chunks_exact(4)
                        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                        .collect(),
                    Dtype::F64 => d
                        .chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .collect(),
                    other => panic!("{name}: unexpected dtype {other:?}"),
                };
                (name, v)
            })
            .collect();
        Self { tensors, meta }
    }

    pub fn get(&self, key: &str) -> &[f64] {
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("fixture has no tensor {key}"))
    }

    pub fn meta_usize(&self, key: &str) -> usize {
        self.meta[key].parse().expect("numeric metadata")
    }

    pub fn meta(&self, key: &str) -> &str {
        &self.meta[key]
    }

    fn images(&self, key: &str) -> Vec<f32> {
        self.get(key).iter().map(|&x| x as f32).collect()
    }

    /// The pinned batch `index` (photos, style, grayscale style, smoothed grayscale).
    pub fn batch(&self, index: usize) -> Batch {
        Batch {
            step: index,
            batch_size: self.meta_usize("batch"),
            image_size: self.meta_usize("size"),
            photos: self.images(&format!("batch{index}/photos")),
            style: self.images(&format!("batch{index}/style")),
            style_gray: self.images(&format!("batch{index}/gray")),
            style_smooth: self.images(&format!("batch{index}/smooth")),
            warnings: vec![],
        }
    }
}

/// One measured comparison against the float64 reference.
#[derive(Debug, Clone)]
pub struct Check {
    /// e.g. `adv1/loss/g_adv` or `init/G/block_a.0.conv.weight [sample]`.
    pub name: String,
    /// Report group: `loss <term>`, `G block_a`, `D`, `u`.
    pub group: String,
    /// Relative error (infinite when anything was NaN).
    pub error: f64,
    /// PyTorch's own float32 error on the same quantity (the fixture's floor).
    pub floor: f64,
    /// The bound it must meet: `max(base, FLOOR_FACTOR * floor)`.
    pub tolerance: f64,
}

/// A float32 implementation may be this many times further from the float64 step
/// than PyTorch's float32 step is (different but equally valid summation orders).
pub const FLOOR_FACTOR: f64 = 4.0;

/// An update element is compared only where the reference's |m_hat| exceeds this
/// many times the RMS float32 noise of m_hat in that tensor.
pub const SIGN_MARGIN: f64 = 3.0;

/// At most this share of a tensor's stored elements may be left out that way.
pub const MAX_EXCLUDED: f64 = 0.1;

fn bound(base: f64, floor: f64) -> f64 {
    base.max(FLOOR_FACTOR * floor)
}

impl Check {
    pub fn passed(&self) -> bool {
        self.error <= self.tolerance
    }
}

/// Base bounds of a comparison run; a check whose float32 floor is higher gets
/// `FLOOR_FACTOR` times its floor instead (see `Check::tolerance`).
#[derive(Debug, Clone, Copy)]
pub struct Tolerances {
    /// Relative error of every loss term.
    pub loss: f64,
    /// Relative L2 error of every parameter tensor's update (sampled elements,
    /// full-tensor norm, full-tensor sketch estimate).
    pub update: f64,
    /// The same for the second adversarial iteration, which starts from the first
    /// one's result: that already carries the sign-noise elements' ±lr differences,
    /// so its gradients differ by more than one step's float32 noise.
    pub update_chained: f64,
    /// Relative L2 error of every spectral-norm `u` after an iteration.
    pub u: f64,
    /// Let the sampled-element check of a tensor rise to `FLOOR_FACTOR` times
    /// PyTorch float32's own error on it. Off on Flex, which meets the base bound
    /// everywhere; on wgpu, whose reductions add their own float32 noise, the L1
    /// content loss's signs flip on near-equal VGG features as they do in PyTorch
    /// float32 (measured: 3.2e-2 on one block_c tensor whose float32 floor is 6.1e-2).
    pub sample_floor: bool,
}

/// Which of the fixture's steps to run.
#[derive(Debug, Clone, Copy)]
pub struct Steps {
    pub init: bool,
    /// Adversarial iterations (0, 1 or 2).
    pub adversarial: usize,
}

/// Installs the fixture's formula weights into every parameter (and `u`) of `module`,
/// after checking the module has exactly the fixture's parameter paths.
fn install<M: Module>(module: M, net: Net, reference: &Reference) -> M {
    let prefix = match net {
        Net::G => "G",
        Net::D => "D",
        Net::Vgg => "VGG",
    };
    let mut values = HashMap::new();
    for (path, shape) in param_shapes(&module) {
        let v = spec(net, &path, &shape);
        // The fixture's sum, sum of squares and first element of the same formula:
        // proves both sides start from the same weights.
        let check = reference.get(&format!("start/{prefix}/{path}"));
        let x: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
        let sum: f64 = x.iter().sum();
        let sq: f64 = x.iter().map(|a| a * a).sum();
        assert_eq!(x[0], check[2], "{prefix} {path}: first element differs");
        assert!(
            (sum - check[0]).abs() <= 1e-9 * check[1].sqrt() * (x.len() as f64).sqrt()
                && (sq - check[1]).abs() <= 1e-9 * check[1],
            "{prefix} {path}: formula weights differ from the fixture's"
        );
        values.insert(path, TensorData::new(v, shape));
    }
    let n = values.len();
    let fixture_paths = reference
        .tensors
        .keys()
        .filter(|k| k.starts_with(&format!("start/{prefix}/")))
        .count();
    assert_eq!(
        n, fixture_paths,
        "{prefix}: parameter count differs from the fixture"
    );
    replace_params(module, values)
}

/// Report group of a parameter path.
fn group_of(net: &str, path: &str) -> String {
    match net {
        "G" => format!("G {}", path.split('.').next().unwrap_or(path)),
        _ => "D".to_string(),
    }
}

fn params_f64<M: Module>(module: &M) -> HashMap<String, Vec<f64>> {
    collect_params(module)
        .into_iter()
        .map(|p| (p.path, p.values.into_iter().map(f64::from).collect()))
        .collect()
}

/// Compares every tensor's update `after - before` with the fixture's `prefix`.
fn compare_updates(
    reference: &Reference,
    prefix: &str,
    net: &str,
    before: &HashMap<String, Vec<f64>>,
    after: &HashMap<String, Vec<f64>>,
    (tol, sample_floor): (f64, bool),
    checks: &mut Vec<Check>,
) {
    let (full_max, sample, k) = (
        reference.meta_usize("full_max"),
        reference.meta_usize("sample"),
        reference.meta_usize("sketch"),
    );
    let mut paths: Vec<&String> = after.keys().filter(|p| !p.ends_with(".u")).collect();
    paths.sort();
    for path in paths {
        let upd: Vec<f64> = after[path]
            .iter()
            .zip(&before[path])
            .map(|(a, b)| a - b)
            .collect();
        let key = format!("{prefix}/{path}");
        let ref_sample = reference.get(&format!("{key}/sample"));
        let ref_norm = reference.get(&format!("{key}/norm"))[0];
        let ref_sketch = reference.get(&format!("{key}/sketch"));
        let floor = reference.get(&format!("{key}/floor"))[0];
        let ref_mhat = reference.get(&format!("{key}/mhat"));
        let mhat_noise = reference.get(&format!("{key}/mhat_noise"))[0];
        let idx = sample_indices(upd.len(), full_max, sample);
        let ours: Vec<f64> = idx.iter().map(|&i| upd[i]).collect();
        let group = group_of(net, path);
        let mut push = |what: &str, group: &str, error: f64, tolerance: f64| {
            checks.push(Check {
                name: format!("{key} [{what}]"),
                group: group.to_string(),
                error,
                floor,
                tolerance,
            })
        };
        // Elements whose update sign float32 can decide: |m_hat| above
        // SIGN_MARGIN x the float32 noise of m_hat (Adam's update is -lr m_hat /
        // (sqrt(v_hat) + eps), so a first step is ~ -lr sign(g) whatever |g|).
        let keep: Vec<usize> = (0..idx.len())
            .filter(|&j| ref_mhat[j].abs() > SIGN_MARGIN * mhat_noise)
            .collect();
        let a: Vec<f64> = keep.iter().map(|&j| ours[j]).collect();
        let b: Vec<f64> = keep.iter().map(|&j| ref_sample[j]).collect();
        let sample_tol = if sample_floor { bound(tol, floor) } else { tol };
        push("sample", &group, nan_fails_rel_l2(&a, &b), sample_tol);
        let excluded = 1.0 - keep.len() as f64 / idx.len() as f64;
        push("excluded", "sign-noise share", excluded, MAX_EXCLUDED);
        let norm = upd.iter().map(|x| x * x).sum::<f64>().sqrt();
        push("norm", &group, nan_fails_rel(norm, ref_norm), tol);
        // E[(s_k . e)^2] = |e|^2 for random signs s_k: the mean over the k projections
        // estimates the whole tensor's squared L2 error.
        let sk = sketch(path, &upd, k);
        let sq: f64 = sk
            .iter()
            .zip(ref_sketch)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            / k as f64;
        let est = if ref_norm > 0.0 {
            sq.sqrt() / ref_norm
        } else {
            sq.sqrt()
        };
        // Reported, not bounded: includes the sign-noise elements (see module doc).
        let est = if est.is_nan() { f64::INFINITY } else { est };
        push("sketch", &format!("{group} all elems"), est, f64::INFINITY);
    }
}

fn compare_losses(
    reference: &Reference,
    prefix: &str,
    ours: &LossValues,
    tol: f64,
    checks: &mut Vec<Check>,
) {
    for (name, value) in LossValues::NAMES.iter().zip(ours.as_array()) {
        let key = format!("{prefix}/loss/{name}");
        let Some(expected) = reference.tensors.get(&key) else {
            assert!(value.is_none(), "{key}: computed but not in the fixture");
            continue;
        };
        let value = value.unwrap_or_else(|| panic!("{key}: photo2anime did not report it"));
        let floor = reference.get(&format!("{prefix}/loss_floor/{name}"))[0];
        checks.push(Check {
            error: nan_fails_rel(f64::from(value), expected[0]),
            name: key,
            group: format!("loss {name}"),
            floor,
            tolerance: bound(tol, floor),
        });
    }
}

/// G, D (with `u`) and VGG with the fixture's start, on `device` (autodiff).
pub fn networks(reference: &Reference, device: &Device) -> Networks {
    let g = install(GeneratorConfig::new().init(device), Net::G, reference);
    let d = install(DiscriminatorConfig::new().init(device), Net::D, reference);
    let vgg = install(Vgg19::random(0, device), Net::Vgg, reference).no_grad();
    let g_paths: Vec<String> =
        serde_json::from_str(reference.meta("g_paths")).expect("g_paths metadata");
    let d_paths: Vec<String> =
        serde_json::from_str(reference.meta("d_paths")).expect("d_paths metadata");
    let mut ours: Vec<String> = param_shapes(&g).into_iter().map(|(p, _)| p).collect();
    let mut theirs = g_paths;
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "generator parameter paths");
    let mut ours: Vec<String> = param_shapes(&d).into_iter().map(|(p, _)| p).collect();
    let mut theirs = d_paths;
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "discriminator parameter paths");
    Networks::new(g, d, vgg)
}

/// Runs the selected steps of the fixture with photo2anime's real step code on
/// `device` (an autodiff device) and returns every comparison.
pub fn run(device: &Device, steps: Steps, tol: Tolerances) -> Vec<Check> {
    let reference = Reference::load();
    let live = LiveParams::default();
    let mut checks = Vec::new();
    if steps.init {
        let mut nets = networks(&reference, device);
        let before = params_f64(&nets.generator);
        let losses = nets.init_step(&reference.batch(0), &live, device).unwrap();
        compare_losses(&reference, "init", &losses, tol.loss, &mut checks);
        let after = params_f64(&nets.generator);
        compare_updates(
            &reference,
            "init/G",
            "G",
            &before,
            &after,
            (tol.update, tol.sample_floor),
            &mut checks,
        );
    }
    if steps.adversarial > 0 {
        let mut nets = networks(&reference, device);
        for it in 1..=steps.adversarial.min(2) {
            let prefix = format!("adv{it}");
            let g_before = params_f64(&nets.generator);
            let d_before = params_f64(&nets.discriminator);
            let losses = nets
                .adversarial_step(&reference.batch(it - 1), &live, device)
                .unwrap();
            compare_losses(&reference, &prefix, &losses, tol.loss, &mut checks);
            let g_after = params_f64(&nets.generator);
            let d_after = params_f64(&nets.discriminator);
            let tol_update = if it == 1 {
                tol.update
            } else {
                tol.update_chained
            };
            compare_updates(
                &reference,
                &format!("{prefix}/D"),
                "D",
                &d_before,
                &d_after,
                (tol_update, tol.sample_floor),
                &mut checks,
            );
            compare_updates(
                &reference,
                &format!("{prefix}/G"),
                "G",
                &g_before,
                &g_after,
                (tol_update, tol.sample_floor),
                &mut checks,
            );
            // `u` as the module holds it (what the next forward and a checkpoint use).
            for i in 0..nets.discriminator.stages.len() {
                let ours = &d_after[&format!("stages.{i}.conv.u")];
                let expected = reference.get(&format!("{prefix}/u_after_g/{i}"));
                let floor = reference.get(&format!("{prefix}/u_floor/{i}"))[0];
                checks.push(Check {
                    name: format!("{prefix}/u stage {i}"),
                    group: "u".to_string(),
                    error: nan_fails_rel_l2(ours, expected),
                    floor,
                    tolerance: bound(tol.u, floor),
                });
            }
        }
    }
    checks
}

/// Prints the worst error per group and every failed check; returns the failures.
/// Also the worst error/tolerance ratio per group (how close to failing).
pub fn report(label: &str, checks: &[Check]) -> Vec<Check> {
    let mut worst: Vec<(String, Check, f64)> = Vec::new();
    for c in checks {
        let ratio = c.error / c.tolerance;
        match worst.iter_mut().find(|(g, _, _)| *g == c.group) {
            Some(w) => {
                if c.error > w.1.error || c.error.is_nan() {
                    w.1 = c.clone();
                }
                w.2 = w.2.max(ratio);
            }
            None => worst.push((c.group.clone(), c.clone(), ratio)),
        }
    }
    println!(
        "{label}: worst relative error per group vs the float64 reference ({} checks; floor = PyTorch float32's error on that check)",
        checks.len()
    );
    for (group, c, ratio) in &worst {
        println!(
            "  {group:<18} {:.3e} (floor {:.2e}, bound {:.2e})  worst error/bound {ratio:.2}  [{}]",
            c.error, c.floor, c.tolerance, c.name
        );
    }
    let failed: Vec<Check> = checks.iter().filter(|c| !c.passed()).cloned().collect();
    for c in &failed {
        println!(
            "  FAILED {}: {:.3e} > {:.2e} (floor {:.2e})",
            c.name, c.error, c.tolerance, c.floor
        );
    }
    failed
}
