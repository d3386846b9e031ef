//! The CPU training ops against the same maths from Burn's own ops on Flex: same
//! outputs and the same gradients for every input.
//! - `model::fast_conv` vs `burn::tensor::module::conv2d`, over the strides,
//!   paddings and kernel sizes the three networks use;
//! - `model::fast_norm` (GroupNorm(1, C) + LeakyReLU) vs `layer_norm_ops` + `leaky_relu`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use burn::tensor::activation::leaky_relu;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Device, Distribution, Tensor};
use photo2anime::model::fast_conv::{conv2d, conv2d_reflect, uses_cpu_kernels};
use photo2anime::model::fast_norm::{layer_norm_act, layer_norm_ops};

/// Largest difference relative to `b`'s scale; NaN when either side holds a NaN
/// (so every `d < tol` check fails on one).
fn max_rel_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let nan = |t: &Tensor<D>| t.clone().is_nan().any().into_scalar::<bool>();
    if nan(&a) || nan(&b) {
        return f32::NAN;
    }
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1e-6);
    (a - b).abs().max().into_scalar::<f32>() / scale
}

struct Case {
    batch: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    /// `[(top, bottom), (left, right)]`.
    padding: [(usize, usize); 2],
    bias: bool,
    weight_trainable: bool,
    groups: usize,
    /// Reflect padding (`conv2d_reflect`, against Burn's reflect `pad` then its conv).
    reflect: bool,
}

fn check(c: Case) {
    let dev = Device::flex().autodiff();
    let options = ConvOptions::new_with_padding([c.stride; 2], c.padding, [1, 1], c.groups);
    let channels = [c.cin, c.cout];
    assert!(uses_cpu_kernels(
        &dev,
        &options,
        channels,
        burn::tensor::DType::F32
    ));
    let x = Tensor::<4>::random(
        [c.batch, c.cin, c.h, c.w],
        Distribution::Normal(0.0, 1.0),
        &dev,
    );
    let w = Tensor::<4>::random(
        [c.cout, c.cin / c.groups, c.k, c.k],
        Distribution::Normal(0.0, 0.5),
        &dev,
    );
    let b = Tensor::<1>::random([c.cout], Distribution::Normal(0.0, 1.0), &dev);
    // A random linear loss, so every output position gets its own gradient.
    let run = |fast: bool| {
        let x = x.clone().detach().require_grad();
        let w = if c.weight_trainable {
            w.clone().detach().require_grad()
        } else {
            w.clone().detach()
        };
        let b = c.bias.then(|| b.clone().detach().require_grad());
        let y = match (fast, c.reflect) {
            (true, false) => conv2d(x.clone(), w.clone(), b.clone(), options.clone()),
            (true, true) => conv2d_reflect(x.clone(), w.clone(), b.clone(), options.clone()),
            (false, false) => {
                burn::tensor::module::conv2d(x.clone(), w.clone(), b.clone(), options.clone())
            }
            (false, true) => {
                let [(t, bottom), (l, r)] = c.padding;
                let padded = x.clone().pad((l, r, t, bottom), PadMode::Reflect);
                let valid =
                    ConvOptions::new_with_padding([c.stride; 2], [(0, 0); 2], [1, 1], c.groups);
                burn::tensor::module::conv2d(padded, w.clone(), b.clone(), valid)
            }
        };
        let r = Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &Device::flex());
        (y, x, w, b, r)
    };
    let (y_fast, x_f, w_f, b_f, r) = run(true);
    let (y_ref, x_r, w_r, b_r, _) = run(false);
    assert_eq!(y_fast.dims(), y_ref.dims());
    let r = Tensor::<4>::from_data(r.into_data(), &dev);
    let g_fast = (y_fast.clone() * r.clone()).sum().backward();
    let g_ref = (y_ref.clone() * r).sum().backward();
    let tol = 1e-5;
    let d = max_rel_diff(y_fast.detach(), y_ref.detach());
    assert!(d < tol, "forward differs by {d}");
    let gx = max_rel_diff(x_f.grad(&g_fast).unwrap(), x_r.grad(&g_ref).unwrap());
    assert!(gx < tol, "input gradient differs by {gx}");
    if c.weight_trainable {
        let gw = max_rel_diff(w_f.grad(&g_fast).unwrap(), w_r.grad(&g_ref).unwrap());
        assert!(gw < tol, "weight gradient differs by {gw}");
    } else {
        assert!(
            w_f.grad(&g_fast).is_none(),
            "a frozen weight got a gradient"
        );
    }
    if let (Some(bf), Some(br)) = (b_f, b_r) {
        let gb = max_rel_diff(bf.grad(&g_fast).unwrap(), br.grad(&g_ref).unwrap());
        assert!(gb < tol, "bias gradient differs by {gb}");
    }
}

fn case(
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: [(usize, usize); 2],
) -> Case {
    Case {
        batch: 2,
        cin,
        cout,
        h,
        w,
        k,
        stride,
        padding: pad,
        bias: false,
        weight_trainable: true,
        groups: 1,
        reflect: false,
    }
}

#[test]
fn vgg_conv_3x3_pad1_with_bias_and_frozen_weight() {
    check(Case {
        bias: true,
        weight_trainable: false,
        ..case(4, 6, 19, 23, 3, 1, [(1, 1), (1, 1)])
    });
}

#[test]
fn conv_3x3_pad1_with_trainable_bias_over_many_bands() {
    // 40 rows of 50: several bands per image, so both parities of the input
    // gradient's band schedule run.
    check(Case {
        batch: 3,
        bias: true,
        ..case(5, 7, 40, 50, 3, 1, [(1, 1), (1, 1)])
    });
}

#[test]
fn discriminator_stride2_pads_top_left_only() {
    check(case(3, 8, 17, 14, 3, 2, [(1, 0), (1, 0)]));
    // Three bands per image: both parities of the im2col input gradient's
    // schedule (stride-1 convs take the tap path, which has none).
    check(Case {
        batch: 3,
        bias: true,
        ..case(5, 7, 80, 50, 3, 2, [(1, 0), (1, 0)])
    });
}

#[test]
fn generator_stride2_pads_bottom_right_only() {
    check(case(4, 4, 16, 21, 3, 2, [(0, 1), (0, 1)]));
}

#[test]
fn generator_7x7_and_1x1_and_unpadded() {
    check(case(3, 5, 13, 15, 7, 1, [(3, 3), (3, 3)]));
    check(case(6, 4, 9, 11, 1, 1, [(0, 0), (0, 0)]));
    check(case(3, 4, 12, 9, 3, 1, [(0, 0), (0, 0)]));
}

/// The generator's depthwise 3x3 (groups = channels, with bias) on its
/// reflect-padded input (padding 0), and with zero padding on uneven sides.
#[test]
fn depthwise_convs() {
    check(Case {
        bias: true,
        groups: 6,
        batch: 3,
        ..case(6, 6, 13, 17, 3, 1, [(0, 0), (0, 0)])
    });
    check(Case {
        bias: true,
        groups: 5,
        ..case(5, 5, 9, 12, 3, 1, [(1, 1), (1, 1)])
    });
    check(Case {
        groups: 4,
        ..case(4, 4, 7, 9, 3, 1, [(2, 0), (0, 1)])
    });
}

/// The generator's reflect-padded convs, read through mirrored indices (no
/// padded copy), against Burn's reflect `pad` followed by its conv: 3x3 and 7x7
/// stride 1, the stride-2 right/bottom padding on even and odd sides, the
/// depthwise 3x3, and inputs only one pixel wider than the padding.
#[test]
fn reflect_padded_convs_match_burns_pad_then_conv() {
    let reflect = |c: Case| Case { reflect: true, ..c };
    // Enough rows of 50 for several bands, so both input-gradient parities run.
    check(reflect(Case {
        batch: 3,
        bias: true,
        ..case(5, 7, 40, 50, 3, 1, [(1, 1), (1, 1)])
    }));
    check(reflect(case(3, 5, 13, 15, 7, 1, [(3, 3), (3, 3)])));
    check(reflect(case(4, 4, 16, 21, 3, 2, [(0, 1), (0, 1)])));
    check(reflect(case(4, 6, 17, 9, 3, 2, [(0, 1), (0, 1)])));
    check(reflect(Case {
        bias: true,
        groups: 6,
        batch: 3,
        ..case(6, 6, 13, 17, 3, 1, [(1, 1), (1, 1)])
    }));
    check(reflect(case(3, 4, 2, 2, 3, 1, [(1, 1), (1, 1)])));
    check(reflect(case(2, 3, 4, 5, 7, 1, [(3, 3), (3, 3)])));
}

/// Stride-1 convs with ≥ 16 channels run as one GEMM per kernel tap over a padded
/// band (`cpu::conv_taps`): zero and reflect padding, 3x3 / 7x7 / 1x1, uneven
/// and absent padding, rows wider than a band, several bands per image, and
/// only one of the forward (`cin`) or input gradient (`cout`) wide enough.
#[test]
fn stride1_convs_by_tap_gemms() {
    check(Case {
        batch: 3,
        bias: true,
        ..case(16, 20, 40, 50, 3, 1, [(1, 1), (1, 1)])
    });
    check(Case {
        bias: true,
        weight_trainable: false,
        ..case(17, 16, 9, 13, 3, 1, [(1, 1), (1, 1)])
    });
    check(case(16, 16, 7, 9, 3, 1, [(2, 0), (0, 1)]));
    check(case(16, 18, 6, 11, 3, 1, [(0, 0), (0, 0)]));
    check(case(18, 16, 5, 7, 1, 1, [(0, 0), (0, 0)]));
    check(case(16, 16, 11, 12, 7, 1, [(3, 3), (3, 3)]));
    check(case(16, 16, 3, 800, 3, 1, [(1, 1), (1, 1)]));
    check(case(16, 4, 9, 10, 3, 1, [(1, 1), (1, 1)]));
    check(case(4, 16, 9, 10, 3, 1, [(1, 1), (1, 1)]));
    // The discriminator's 256 -> 1 head: input gradient over expanded `dOut`.
    check(Case {
        batch: 3,
        ..case(16, 1, 30, 40, 3, 1, [(1, 1), (1, 1)])
    });
    let reflect = |c: Case| Case { reflect: true, ..c };
    check(reflect(Case {
        batch: 3,
        bias: true,
        ..case(16, 20, 40, 50, 3, 1, [(1, 1), (1, 1)])
    }));
    check(reflect(case(16, 16, 13, 15, 7, 1, [(3, 3), (3, 3)])));
    check(reflect(case(16, 16, 2, 2, 3, 1, [(1, 1), (1, 1)])));
    check(reflect(case(16, 17, 4, 5, 7, 1, [(3, 3), (3, 3)])));
    check(reflect(case(16, 16, 3, 700, 3, 1, [(1, 1), (1, 1)])));
    check(reflect(case(16, 3, 9, 8, 3, 1, [(1, 1), (1, 1)])));
}

/// `conv2d` routes only plain and autodiff Flex with groups 1 (or depthwise,
/// stride 1), dilation 1 and f32 to the CPU kernels; everything else, wgpu above all, keeps Burn's conv. The wgpu
/// device is only named (`Device::wgpu` is lazy), so no adapter is needed; when one
/// exists, `conv2d` on it must also give Burn's result.
#[test]
fn non_flex_devices_keep_burns_conv() {
    use burn::tensor::{DType, DeviceKind};
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let flex = Device::flex();
    let wgpu = Device::wgpu(DeviceKind::DefaultDevice);
    let ch = [3, 4];
    assert!(uses_cpu_kernels(&flex, &options, ch, DType::F32));
    assert!(uses_cpu_kernels(
        &flex.clone().autodiff(),
        &options,
        ch,
        DType::F32
    ));
    assert!(!uses_cpu_kernels(&wgpu, &options, ch, DType::F32), "wgpu");
    assert!(
        !uses_cpu_kernels(&wgpu.clone().autodiff(), &options, ch, DType::F32),
        "autodiff wgpu"
    );
    let depthwise = ConvOptions::new([1, 1], [1, 1], [1, 1], 4);
    assert!(uses_cpu_kernels(&flex, &depthwise, [4, 4], DType::F32));
    assert!(!uses_cpu_kernels(&wgpu, &depthwise, [4, 4], DType::F32));
    // Flex cases the kernels do not cover.
    assert!(
        !uses_cpu_kernels(&flex, &depthwise, [8, 8], DType::F32),
        "groups 4 of 8"
    );
    assert!(
        !uses_cpu_kernels(&flex, &depthwise, [4, 8], DType::F32),
        "depth multiplier 2"
    );
    let strided = ConvOptions::new([2, 2], [1, 1], [1, 1], 4);
    assert!(
        !uses_cpu_kernels(&flex, &strided, [4, 4], DType::F32),
        "depthwise stride 2"
    );
    let dilated = ConvOptions::new([1, 1], [2, 2], [2, 2], 1);
    assert!(
        !uses_cpu_kernels(&flex, &dilated, ch, DType::F32),
        "dilation 2"
    );
    assert!(!uses_cpu_kernels(&flex, &options, ch, DType::F16), "f16");

    match photo2anime::device::require_wgpu() {
        Ok(gpu) => {
            let x = Tensor::<4>::random([1, 3, 9, 11], Distribution::Normal(0.0, 1.0), &flex);
            let w = Tensor::<4>::random([4, 3, 3, 3], Distribution::Normal(0.0, 0.5), &flex);
            let on = |t: &Tensor<4>| Tensor::<4>::from_data(t.to_data(), &gpu.device);
            let y = conv2d(on(&x), on(&w), None, options.clone());
            let y_ref = burn::tensor::module::conv2d(on(&x), on(&w), None, options);
            let d = max_rel_diff(y, y_ref);
            println!(
                "conv2d on {}: relative difference to Burn's {d:e}",
                gpu.description
            );
            // Routed to the CPU kernels, a wgpu tensor would not even run.
            assert!(d < 1e-5, "conv2d on wgpu differs from Burn's conv by {d}");
        }
        Err(reason) => println!("no wgpu run: {reason}"),
    }
}

fn check_norm(shape: [usize; 4], slope: Option<f64>) {
    let dev = Device::flex().autodiff();
    let x = Tensor::<4>::random(shape, Distribution::Normal(0.3, 2.0), &dev);
    // Random scale and shift, so the activation sees both signs everywhere.
    let gamma = Tensor::<1>::random([shape[1]], Distribution::Normal(0.0, 1.0), &dev);
    let beta = Tensor::<1>::random([shape[1]], Distribution::Normal(0.0, 1.0), &dev);
    let r = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &dev);
    let run = |fast: bool| {
        let (x, g, b) = (
            x.clone().detach().require_grad(),
            gamma.clone().detach().require_grad(),
            beta.clone().detach().require_grad(),
        );
        let y = if fast {
            layer_norm_act(x.clone(), g.clone(), b.clone(), 1e-5, slope)
        } else {
            let y = layer_norm_ops(x.clone(), g.clone(), b.clone(), 1e-5);
            slope.map_or(y.clone(), |k| leaky_relu(y, k))
        };
        let grads = (y.clone() * r.clone()).sum().backward();
        (
            y.detach(),
            [
                x.grad(&grads).unwrap(),
                g.grad(&grads).unwrap().unsqueeze::<4>(),
                b.grad(&grads).unwrap().unsqueeze::<4>(),
            ],
        )
    };
    let (y_fast, g_fast) = run(true);
    let (y_ref, g_ref) = run(false);
    let d = max_rel_diff(y_fast, y_ref);
    assert!(d < 1e-5, "norm forward differs by {d}");
    for (name, (a, b)) in ["x", "gamma", "beta"]
        .iter()
        .zip(g_fast.into_iter().zip(g_ref))
    {
        let d = max_rel_diff(a, b);
        assert!(d < 1e-4, "norm gradient of {name} differs by {d}");
    }
}

#[test]
fn norm_with_leaky_relu_matches_burn_ops() {
    check_norm([3, 5, 7, 9], Some(0.2));
}

#[test]
fn norm_without_activation_matches_burn_ops() {
    check_norm([2, 4, 33, 31], None);
}

#[test]
fn lone_leaky_relu_matches_burn() {
    let dev = Device::flex().autodiff();
    let x0 = Tensor::<4>::random([2, 3, 5, 7], Distribution::Normal(0.0, 1.0), &dev);
    let r = Tensor::<4>::random([2, 3, 5, 7], Distribution::Normal(0.0, 1.0), &dev);
    let run = |fast: bool| {
        let x = x0.clone().detach().require_grad();
        let y = if fast {
            photo2anime::model::fast_norm::leaky_relu_act(x.clone(), 0.2)
        } else {
            leaky_relu(x.clone(), 0.2)
        };
        let grads = (y.clone() * r.clone()).sum().backward();
        (y.detach(), x.grad(&grads).unwrap())
    };
    let ((y1, g1), (y2, g2)) = (run(true), run(false));
    assert!(max_rel_diff(y1, y2) < 1e-6);
    assert!(max_rel_diff(g1, g2) < 1e-6);
}

/// VGG's ReLU (the LeakyReLU op with slope 0, whose node keeps its output) against
/// Burn's ReLU, values and gradient, with inputs of exactly 0 among them (their
/// gradient is 0, as in PyTorch).
#[test]
fn relu_from_its_output_matches_burn() {
    let dev = Device::flex().autodiff();
    let x0 = Tensor::<4>::random([2, 3, 5, 7], Distribution::Normal(0.0, 1.0), &dev);
    // Every third value exactly 0.
    let x0 = x0.clone().mask_fill(
        Tensor::<1, burn::tensor::Int>::arange(0..210, &dev)
            .remainder_scalar(3)
            .equal_elem(0)
            .reshape([2, 3, 5, 7]),
        0.0,
    );
    let r = Tensor::<4>::random([2, 3, 5, 7], Distribution::Normal(0.0, 1.0), &dev);
    let run = |fast: bool| {
        let x = x0.clone().detach().require_grad();
        let y = if fast {
            photo2anime::model::fast_norm::relu_act(x.clone())
        } else {
            burn::tensor::activation::relu(x.clone())
        };
        let grads = (y.clone() * r.clone()).sum().backward();
        (y.detach(), x.grad(&grads).unwrap())
    };
    let ((y1, g1), (y2, g2)) = (run(true), run(false));
    assert!(max_rel_diff(y1, y2) < 1e-6, "relu values");
    assert!(max_rel_diff(g1, g2) < 1e-6, "relu gradient");
}

/// VGG's 2x2 max pool (its node finds each window's maximum again from the
/// input) against Burn's `max_pool2d`, values and gradient, on even and odd
/// sides and after a ReLU (windows of equal zeros: the first one gets the
/// gradient, as in Burn and PyTorch).
#[test]
fn max_pool_matches_burn() {
    use burn::tensor::module::max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;
    use photo2anime::model::fast_pool::max_pool2x2;
    let dev = Device::flex().autodiff();
    for (dims, relu) in [
        ([2, 3, 8, 10], false),
        ([1, 4, 9, 7], false),
        ([2, 2, 12, 6], true),
    ] {
        let x0 = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &dev);
        let x0 = if relu {
            burn::tensor::activation::relu(x0)
        } else {
            x0
        };
        let [b, c, h, w] = dims;
        let r = Tensor::<4>::random([b, c, h / 2, w / 2], Distribution::Normal(0.0, 1.0), &dev);
        let run = |fast: bool| {
            let x = x0.clone().detach().require_grad();
            let y = if fast {
                max_pool2x2(x.clone())
            } else {
                max_pool2d(x.clone(), MaxPoolOptions::new([2, 2]))
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            (y.detach(), x.grad(&grads).unwrap())
        };
        let ((y1, g1), (y2, g2)) = (run(true), run(false));
        assert_eq!(y1.dims(), y2.dims(), "{dims:?}");
        assert!(max_rel_diff(y1, y2) == 0.0, "{dims:?}: pooled values");
        assert!(max_rel_diff(g1, g2) == 0.0, "{dims:?}: pool gradient");
    }
}

/// Training's bilinear upsampling on Flex (direct taps, `model::fast_upsample`)
/// against Burn's own `interpolate` and its backward on Flex, in both corner
/// modes, x2 and to odd sizes, values and input gradient.
#[test]
fn training_upsample_matches_burns_interpolate() {
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
    use photo2anime::model::upsample::upsample_bilinear;
    let dev = Device::flex().autodiff();
    let x0 = Tensor::<4>::random([2, 3, 7, 10], Distribution::Normal(0.0, 1.0), &dev);
    for (out, align) in [
        ([14, 20], true),
        ([15, 21], true),
        ([14, 20], false),
        ([9, 31], false),
    ] {
        let r = Tensor::<4>::random([2, 3, out[0], out[1]], Distribution::Normal(0.0, 1.0), &dev);
        let run = |fast: bool| {
            let x = x0.clone().detach().require_grad();
            let y = if fast {
                upsample_bilinear(x.clone(), out, align)
            } else {
                let options = InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_output_size(out)
                    .with_align_corners(align);
                interpolate(x.clone(), options)
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            (y.detach(), x.grad(&grads).unwrap())
        };
        let ((y1, g1), (y2, g2)) = (run(true), run(false));
        let (dy, dg) = (max_rel_diff(y1, y2), max_rel_diff(g1, g2));
        assert!(dy < 1e-5, "{out:?} align {align}: values differ by {dy}");
        assert!(dg < 1e-5, "{out:?} align {align}: gradients differ by {dg}");
    }
}

/// Strided views reach the CPU kernels as copies in logical order
/// (`model::cpu::flex::flex_values`), never as their raw buffers or as an empty
/// vector: a transposed input through the conv and the norm, forward and backward.
#[test]
fn strided_inputs_are_read_in_logical_order() {
    let dev = Device::flex().autodiff();
    // [2, 3, 11, 7] transposed to [2, 3, 7, 11]: a zero-copy strided view on Flex.
    let x0 = Tensor::<4>::random([2, 3, 11, 7], Distribution::Normal(0.0, 1.0), &dev);
    let w = Tensor::<4>::random([4, 3, 3, 3], Distribution::Normal(0.0, 0.5), &dev);
    let gamma = Tensor::<1>::random([3], Distribution::Normal(1.0, 0.5), &dev);
    let beta = Tensor::<1>::random([3], Distribution::Normal(0.0, 0.5), &dev);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let run = |fast: bool| {
        let x = x0.clone().detach().require_grad();
        let xt = x.clone().swap_dims(2, 3);
        let (y, n) = if fast {
            (
                conv2d(xt.clone(), w.clone(), None, options.clone()),
                layer_norm_act(xt, gamma.clone(), beta.clone(), 1e-5, Some(0.2)),
            )
        } else {
            (
                burn::tensor::module::conv2d(xt.clone(), w.clone(), None, options.clone()),
                leaky_relu(layer_norm_ops(xt, gamma.clone(), beta.clone(), 1e-5), 0.2),
            )
        };
        let grads = (y.clone().sum() + n.clone().square().sum()).backward();
        (y.detach(), n.detach(), x.grad(&grads).unwrap())
    };
    let (y1, n1, g1) = run(true);
    let (y2, n2, g2) = run(false);
    assert_eq!(y1.dims(), [2, 4, 7, 11]);
    assert!(max_rel_diff(y1, y2) < 1e-5, "conv");
    assert!(max_rel_diff(n1, n2) < 1e-5, "norm");
    assert!(max_rel_diff(g1, g2) < 1e-4, "input gradient");
}
