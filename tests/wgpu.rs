//! The real wgpu backend (Mesa lavapipe in CI) against Flex: a generator forward
//! and one full training step must agree within a tolerance.
//!
//! With `PHOTO2ANIME_REQUIRE_WGPU=1` (set by `.ci/run`) a missing adapter fails
//! the test; elsewhere the test is skipped with a printed reason.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use photo2anime::data::Batch;
use photo2anime::device::require_wgpu;
use photo2anime::interop::params::{collect_params, replace_params};
use photo2anime::model::{DiscriminatorConfig, GeneratorConfig, Vgg19};
use photo2anime::train::LiveParams;
use photo2anime::train::step::Networks;

fn wgpu_or_skip() -> Option<Device> {
    match require_wgpu() {
        Ok(d) => {
            println!("wgpu adapter: {}", d.description);
            Some(d.device)
        }
        Err(reason) => {
            if std::env::var("PHOTO2ANIME_REQUIRE_WGPU").as_deref() == Ok("1") {
                panic!("PHOTO2ANIME_REQUIRE_WGPU=1 but {reason}");
            }
            println!("skipped: {reason}");
            None
        }
    }
}

/// Copies every parameter of `module` onto `device` through host memory, so both
/// backends start from bit-identical weights.
fn same_weights<M: Module>(module: &M, fresh: M) -> M {
    let data = collect_params(module)
        .into_iter()
        .map(|p| (p.path, burn::tensor::TensorData::new(p.values, p.shape)))
        .collect();
    replace_params(fresh, data)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn wgpu_matches_flex_forward_and_training_step() {
    let Some(gpu) = wgpu_or_skip() else { return };
    let cpu = Device::flex();

    // Forward.
    let g_cpu = GeneratorConfig::new().init(&cpu);
    let g_gpu = same_weights(&g_cpu, GeneratorConfig::new().init(&gpu));
    let x = Tensor::<4>::random([1, 3, 40, 36], Distribution::Uniform(-1.0, 1.0), &cpu);
    let x_data = x.to_data();
    let y_cpu = g_cpu.forward(x).into_data().try_to_vec::<f32>().unwrap();
    let y_gpu = g_gpu
        .forward(Tensor::from_data(x_data, &gpu))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let d = max_diff(&y_cpu, &y_gpu);
    println!("generator forward max |wgpu - flex| = {d:e}");
    assert!(d < 1e-3, "forward differs by {d}");

    // One full (D + G) training step from identical weights and data.
    let batch = Batch {
        step: 0,
        batch_size: 1,
        image_size: 32,
        photos: Tensor::<4>::random([1, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &cpu)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        style: Tensor::<4>::random([1, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &cpu)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        style_gray: Tensor::<4>::random([1, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &cpu)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        style_smooth: Tensor::<4>::random([1, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &cpu)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        warnings: vec![],
    };
    let (ad_cpu, ad_gpu) = (cpu.clone().autodiff(), gpu.clone().autodiff());
    let g = GeneratorConfig::new().init(&ad_cpu);
    let dsc = DiscriminatorConfig::new().init(&ad_cpu);
    let vgg = Vgg19::random(19, &ad_cpu);
    let mut nets_gpu = Networks::new(
        same_weights(&g, GeneratorConfig::new().init(&ad_gpu)),
        same_weights(&dsc, DiscriminatorConfig::new().init(&ad_gpu)),
        same_weights(&vgg, Vgg19::random(19, &ad_gpu)).no_grad(),
    );
    let mut nets_cpu = Networks::new(g, dsc, vgg.no_grad());
    let live = LiveParams::default();
    let l_cpu = nets_cpu.adversarial_step(&batch, &live, &ad_cpu);
    let l_gpu = nets_gpu.adversarial_step(&batch, &live, &ad_gpu);
    println!("losses flex {l_cpu:?}\nlosses wgpu {l_gpu:?}");
    // Terms computed before D's update must agree closely. `g_adv` (and so `g_total`)
    // is measured through the *updated* D, and Adam's first step moves every weight by
    // ±lr whatever its gradient's size: the ~1e-4-relative gradient noise between
    // backends flips the sign of many tiny gradients, so D(G(p)) after the update may
    // legitimately differ by tens of percent. Those two are only required finite;
    // the gradients themselves are compared in `discriminator_gradients_match`, and
    // the updated weights below.
    for (name, (a, b)) in photo2anime::train::LossValues::NAMES
        .iter()
        .zip(l_cpu.as_array().into_iter().zip(l_gpu.as_array()))
    {
        let (a, b) = (a.unwrap(), b.unwrap());
        if matches!(*name, "g_adv" | "g_total") {
            assert!(
                a.is_finite() && b.is_finite(),
                "{name}: flex {a} vs wgpu {b}"
            );
        } else {
            assert!(
                (a - b).abs() <= 1e-3 * a.abs().max(1e-6),
                "{name}: flex {a} vs wgpu {b}"
            );
        }
    }
    // Every D weight moved by at most 2 lr relative to the other backend.
    let dw_cpu: Vec<f32> = collect_params(&nets_cpu.discriminator)
        .into_iter()
        .flat_map(|p| p.values)
        .collect();
    let dw_gpu: Vec<f32> = collect_params(&nets_gpu.discriminator)
        .into_iter()
        .flat_map(|p| p.values)
        .collect();
    let d = max_diff(&dw_cpu, &dw_gpu);
    println!("discriminator after one step: max |wgpu - flex| = {d:e}");
    assert!(
        d <= 2.0 * live.lr_d as f32 + 1e-5,
        "updated D weights differ by {d}"
    );
    let w_cpu: Vec<f32> = collect_params(&nets_cpu.generator)
        .into_iter()
        .flat_map(|p| p.values)
        .collect();
    let w_gpu: Vec<f32> = collect_params(&nets_gpu.generator)
        .into_iter()
        .flat_map(|p| p.values)
        .collect();
    let d = max_diff(&w_cpu, &w_gpu);
    println!("generator weights after one step: max |wgpu - flex| = {d:e}");
    assert!(d < 1e-3, "updated weights differ by {d}");
}

#[test]
fn pytorch_fixture_outputs_match_on_wgpu() {
    let Some(gpu) = wgpu_or_skip() else { return };
    for mode in [
        photo2anime::model::UpsampleMode::AlignCorners,
        photo2anime::model::UpsampleMode::HalfPixelX2,
    ] {
        for (case, d) in common::fixture_max_diff(&gpu, mode) {
            println!("wgpu {case}: max |diff| = {d:e}");
            assert!(d <= 1e-4, "{case}: max difference {d} > 1e-4");
        }
    }
}

#[test]
fn discriminator_gradients_match() {
    use burn::optim::GradientsParams;
    let Some(gpu) = wgpu_or_skip() else { return };
    let (cpu, gpu) = (Device::flex().autodiff(), gpu.autodiff());
    let d_cpu = DiscriminatorConfig::new().init(&cpu);
    let d_gpu = same_weights(&d_cpu, DiscriminatorConfig::new().init(&gpu));
    // A fixed input: the comparison must not depend on the run.
    Device::flex().seed(7);
    let x = Tensor::<4>::random(
        [2, 3, 32, 32],
        Distribution::Uniform(-1.0, 1.0),
        &Device::flex(),
    )
    .to_data();
    let loss_cpu = d_cpu
        .forward(Tensor::from_data(x.clone(), &cpu))
        .square()
        .mean();
    let loss_gpu = d_gpu.forward(Tensor::from_data(x, &gpu)).square().mean();
    let g_cpu = GradientsParams::from_grads(loss_cpu.backward(), &d_cpu);
    let g_gpu = GradientsParams::from_grads(loss_gpu.backward(), &d_gpu);
    for (i, (a, b)) in d_cpu.stages.iter().zip(&d_gpu.stages).enumerate() {
        let a = g_cpu
            .get::<4>(a.conv.weight.id)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let b = g_gpu
            .get::<4>(b.conv.weight.id)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // Relative L2 error over the whole tensor. Spectral norm's sigma is spread
        // by a matmul (see `SpectralConv2d`), so no million-value wgpu reduction
        // sits in the backward; before that fix stages 4-5 were off by ~0.5%.
        let norm = a.iter().map(|v| v * v).sum::<f32>().sqrt();
        let err = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt();
        let rel = err / norm.max(1e-12);
        println!(
            "D stage {i}: max |grad wgpu - grad flex| = {:e}, relative L2 error {rel:e}",
            max_diff(&a, &b)
        );
        assert!(rel <= 1e-4, "stage {i}: gradient relative L2 error {rel}");
    }
}
