//! Architecture tests: parameter counts, shapes (odd sizes too), padding, upsampling
//! and the PyTorch key mapping; and the shared comparison helpers' NaN handling.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use burn::module::Module;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use photo2anime::interop::keys::burn_to_port;
use photo2anime::interop::params::param_shapes;
use photo2anime::model::blocks::Padding;
use photo2anime::model::upsample::upsample_bilinear_matmul;
use photo2anime::model::{DiscriminatorConfig, GeneratorConfig, UpsampleMode, Vgg19};

fn dev() -> Device {
    Device::flex()
}

#[test]
fn generator_has_the_published_parameter_count() {
    let g = GeneratorConfig::new().init(&dev());
    assert_eq!(g.num_params(), 2_143_552);
}

#[test]
fn discriminator_has_the_published_parameter_count() {
    let d = DiscriminatorConfig::new().init(&dev());
    // num_params also counts the spectral-norm vectors u (one per output channel),
    // which PyTorch keeps as buffers, not parameters.
    let u: usize = [32, 64, 128, 128, 256, 256, 1].iter().sum();
    assert_eq!(d.num_params() - u, 1_128_800);
}

#[test]
fn vgg_up_to_conv4_4_has_the_published_parameter_count() {
    let vgg = Vgg19::random(1, &dev());
    assert_eq!(vgg.num_params(), 10_585_152);
}

#[test]
fn generator_keeps_odd_sizes() {
    let g = GeneratorConfig::new().init(&dev());
    for (h, w) in [(45, 61), (33, 25), (64, 48)] {
        let x = Tensor::<4>::random([1, 3, h, w], Distribution::Uniform(-1.0, 1.0), &dev());
        let y = g.forward(x);
        assert_eq!(y.dims(), [1, 3, h, w]);
        let v = y.into_data().try_to_vec::<f32>().unwrap();
        assert!(
            v.iter().all(|x| x.is_finite() && x.abs() <= 1.0),
            "tanh output must be in [-1, 1]"
        );
    }
}

#[test]
fn half_pixel_generator_keeps_multiples_of_four() {
    let g = GeneratorConfig::new()
        .with_upsample(UpsampleMode::HalfPixelX2)
        .init(&dev());
    let x = Tensor::<4>::random([2, 3, 36, 52], Distribution::Uniform(-1.0, 1.0), &dev());
    assert_eq!(g.forward(x).dims(), [2, 3, 36, 52]);
}

#[test]
fn discriminator_outputs_a_quarter_resolution_patch_map() {
    let d = DiscriminatorConfig::new().init(&dev());
    let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Uniform(-1.0, 1.0), &dev());
    assert_eq!(d.forward(x).dims(), [2, 1, 16, 16]);
}

#[test]
fn vgg_features_are_an_eighth_of_the_input() {
    let vgg = Vgg19::random(1, &dev());
    let x = Tensor::<4>::random([1, 3, 64, 40], Distribution::Uniform(-1.0, 1.0), &dev());
    assert_eq!(vgg.forward(x).dims(), [1, 512, 8, 5]);
}

#[test]
fn stride_two_padding_reflects_right_and_bottom_only() {
    // [[0,1,2],[3,4,5],[6,7,8]] padded right/bottom by 1 with reflection.
    let x = Tensor::<4>::from_data(
        TensorData::new((0..9).map(|v| v as f32).collect::<Vec<_>>(), [1, 1, 3, 3]),
        &dev(),
    );
    let y = Padding::reflect_right_bottom().apply(x);
    assert_eq!(y.dims(), [1, 1, 4, 4]);
    let v = y.into_data().try_to_vec::<f32>().unwrap();
    #[rustfmt::skip]
    let expected = vec![
        0., 1., 2., 1.,
        3., 4., 5., 4.,
        6., 7., 8., 7.,
        3., 4., 5., 4.,
    ];
    assert_eq!(v, expected);
}

#[test]
fn reflect_padding_excludes_the_edge() {
    let x = Tensor::<4>::from_data(
        TensorData::new(vec![1f32, 2., 3., 4.], [1, 1, 1, 4]),
        &dev(),
    );
    let p = Padding {
        left: 3,
        right: 3,
        top: 0,
        bottom: 0,
        reflect: true,
    };
    let v = p.apply(x).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(v, vec![4., 3., 2., 1., 2., 3., 4., 3., 2., 1.]);
}

#[test]
fn matmul_upsampling_equals_interpolate_in_both_modes() {
    let x = Tensor::<4>::random([2, 3, 7, 10], Distribution::Uniform(-1.0, 1.0), &dev());
    for (out, align) in [([14, 20], true), ([15, 21], true), ([14, 20], false)] {
        let a = upsample_bilinear_matmul(x.clone(), out, align)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let options = InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_output_size(out)
            .with_align_corners(align);
        let b = interpolate(x.clone(), options)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        common::assert_close(&a, &b, 1e-5, &format!("align_corners={align} out={out:?}"));
    }
}

#[test]
fn matmul_upsampling_matches_hand_computed_align_corners_values() {
    // [0, 3] upsampled to 4 with align_corners=True: 0, 1, 2, 3.
    let x = Tensor::<4>::from_data(TensorData::new(vec![0f32, 3.], [1, 1, 1, 2]), &dev());
    let v = upsample_bilinear_matmul(x.clone(), [1, 4], true)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(v, vec![0., 1., 2., 3.]);
    // align_corners=False, x2: 0, 0.75, 2.25, 3.
    let v = upsample_bilinear_matmul(x, [1, 4], false)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(v, vec![0., 0.75, 2.25, 3.]);
}

#[test]
fn every_generator_parameter_maps_onto_the_port_state_dict() {
    let reference = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/animeganv2_generator_state_dict.txt"
    ))
    .unwrap();
    let mut expected: Vec<(String, Vec<usize>)> = reference
        .lines()
        .filter(|l| !l.starts_with("tensors:"))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let key = parts.next().unwrap().to_string();
            let rest: String = l
                .split('[')
                .nth(1)
                .unwrap()
                .split(']')
                .next()
                .unwrap()
                .to_string();
            let shape = rest.split(',').map(|d| d.trim().parse().unwrap()).collect();
            (key, shape)
        })
        .collect();
    let g = GeneratorConfig::new().init(&dev());
    let mut mapped: Vec<(String, Vec<usize>)> = param_shapes(&g)
        .into_iter()
        .map(|(p, s)| (burn_to_port(&p), s))
        .collect();
    expected.sort();
    mapped.sort();
    assert_eq!(expected.len(), 77);
    assert_eq!(mapped, expected);
}

/// The shared comparison helpers must see NaN: `fold(0.0, f32::max)`, which they
/// replace, reports an all-NaN output as "0 difference".
#[test]
fn max_abs_diff_propagates_nan() {
    let good = [0.5f32, -1.0, 2.0];
    assert_eq!(common::max_abs_diff(&good, &good), 0.0);
    assert_eq!(common::max_abs_diff(&good, &[0.5, -1.5, 2.25]), 0.5);
    let all_nan = [f32::NAN; 3];
    assert!(common::max_abs_diff(&all_nan, &good).is_nan());
    assert!(common::max_abs_diff(&good, &all_nan).is_nan());
    let one_nan = [0.5f32, f32::NAN, 2.0];
    assert!(common::max_abs_diff(&one_nan, &good).is_nan());
    assert!(common::max_abs_diff(&[f32::INFINITY], &[0.0]).is_infinite());
    assert!(common::rel_l2_error(&all_nan, &good).is_nan());
    assert!(common::rel_l2_error(&good, &all_nan).is_nan());
    assert_eq!(common::rel_l2_error(&good, &good), 0.0);
    // NaN on both sides is no match either: it fails every `d <= tol`.
    assert!(common::max_abs_diff(&all_nan, &all_nan).is_nan());
}

#[test]
#[should_panic(expected = "left side is not finite at index 0")]
fn assert_close_rejects_an_all_nan_output() {
    common::assert_close(&[f32::NAN; 4], &[0.0; 4], 1e-3, "all-NaN output");
}

#[test]
#[should_panic(expected = "right side is not finite at index 1")]
fn assert_close_rejects_a_nan_reference() {
    common::assert_close(&[0.0; 2], &[0.0, f32::NAN], 1e-3, "NaN reference");
}

#[test]
#[should_panic(expected = "lengths differ")]
fn max_abs_diff_rejects_different_lengths() {
    common::max_abs_diff(&[0.0; 3], &[0.0; 2]);
}

#[test]
#[should_panic(expected = "relative L2 error")]
fn assert_rel_l2_fails_beyond_the_tolerance() {
    common::assert_rel_l2(&[1.0, 1.0], &[1.0, 1.1], 1e-3, "perturbed");
}

#[test]
#[should_panic(expected = "not finite")]
fn assert_rel_l2_rejects_nan() {
    common::assert_rel_l2(&[f32::NAN; 2], &[1.0; 2], 1e-3, "all-NaN update");
}
