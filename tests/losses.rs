//! Each loss on tiny tensors, against values computed by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use burn::tensor::{Device, Tensor, TensorData};
use photo2anime::train::losses::*;

fn t(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, shape), &Device::flex())
}

fn scalar(x: Tensor<1>) -> f32 {
    x.into_scalar::<f32>()
}

fn close(a: f32, b: f32) {
    assert!((a - b).abs() < 1e-5, "{a} != {b}");
}

#[test]
fn lsgan_generator_term() {
    // mean((0-1)^2, (2-1)^2) = 1
    close(scalar(lsgan_generator(t(vec![0., 2.], [1, 1, 1, 2]))), 1.0);
}

#[test]
fn four_term_discriminator_loss() {
    let w = DiscriminatorWeights {
        adv: 300.0,
        real: 1.7,
        fake: 1.7,
        gray: 1.7,
        smooth: 1.0,
    };
    let d = discriminator_loss(
        t(vec![1., 3.], [1, 1, 1, 2]),  // real: mean(0, 4) = 2
        t(vec![1., -1.], [1, 1, 1, 2]), // fake: mean(1, 1) = 1
        t(vec![2., 0.], [1, 1, 1, 2]),  // gray: mean(4, 0) = 2
        t(vec![0., 0.], [1, 1, 1, 2]),  // smooth: 0
        w,
    );
    close(scalar(d.real), 2.0);
    close(scalar(d.fake), 1.0);
    close(scalar(d.gray), 2.0);
    close(scalar(d.smooth), 0.0);
    // 300 * (1.7*2 + 1.7*1 + 1.7*2 + 1.0*0) = 2550
    assert!((scalar(d.total) - 2550.0).abs() < 1e-2);
}

#[test]
fn content_is_mean_absolute_difference() {
    close(
        scalar(content_loss(
            t(vec![1., 2.], [1, 1, 1, 2]),
            t(vec![0., 4.], [1, 1, 1, 2]),
        )),
        1.5,
    );
}

#[test]
fn gram_is_normalised_by_chw() {
    // channels [1, 2] and [3, 4]: F Fᵀ = [[5, 11], [11, 25]], / (C H W = 4)
    let g = gram(t(vec![1., 2., 3., 4.], [1, 2, 1, 2]));
    assert_eq!(g.dims(), [1, 2, 2]);
    let v = g.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(v, vec![1.25, 2.75, 2.75, 6.25]);
}

#[test]
fn style_is_l1_between_grams() {
    // gram of zeros is zero: mean(|[1.25, 2.75, 2.75, 6.25]|) = 3.25
    close(
        scalar(style_loss(
            t(vec![1., 2., 3., 4.], [1, 2, 1, 2]),
            t(vec![0.; 4], [1, 2, 1, 2]),
        )),
        3.25,
    );
}

#[test]
fn yuv_of_pure_red() {
    // [-1, 1] red (1, -1, -1) is (1, 0, 0) in [0, 1].
    let v = rgb_to_yuv(t(vec![1., -1., -1.], [1, 3, 1, 1]))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    close(v[0], 0.299);
    close(v[1], -0.14714119);
    close(v[2], 0.614_975_4);
}

#[test]
fn huber_is_quadratic_then_linear() {
    // d = 0.5 -> 0.125; d = 3 -> 1 * (3 - 0.5) = 2.5; mean 1.3125
    close(
        scalar(huber(
            t(vec![0.5, 3.], [1, 1, 1, 2]),
            t(vec![0., 0.], [1, 1, 1, 2]),
            1.0,
        )),
        1.3125,
    );
}

#[test]
fn color_loss_of_red_against_gray() {
    // photo 0 -> (0.5, 0.5, 0.5): Y 0.5, U 0, V 0 (the kernel's rows sum to 0).
    // fake red: Y 0.299, U -0.14714119, V 0.61497538.
    let expected = (0.5 - 0.299) + 0.5 * 0.14714119f32.powi(2) + 0.5 * 0.614_975_4_f32.powi(2);
    close(
        scalar(color_loss(
            t(vec![0., 0., 0.], [1, 3, 1, 1]),
            t(vec![1., -1., -1.], [1, 3, 1, 1]),
        )),
        expected,
    );
}

#[test]
fn total_variation_of_a_ramp() {
    // [[0, 1], [2, 3]]: dh = [2, 2] -> 8/2/2 = 2; dw = [1, 1] -> 2/2/2 = 0.5
    close(
        scalar(total_variation(t(vec![0., 1., 2., 3.], [1, 1, 2, 2]))),
        2.5,
    );
}

#[test]
fn grayscale_uses_bt601_weights() {
    let v = grayscale3(t(vec![1., -1., -1.], [1, 3, 1, 1]))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for x in v {
        close(x, 0.299 - 0.587 - 0.114);
    }
}
