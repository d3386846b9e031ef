//! GroupNorm(1, C) + LeakyReLU as one training op: on Flex (the CPU) a backend
//! extension with its own backward ([`crate::model::cpu::norm`]); elsewhere the
//! same maths from Burn ops ([`layer_norm_ops`]), which wgpu fuses itself.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::activation::{leaky_relu, relu};
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::cpu::flex::{flex_tensor, flex_values};
use super::cpu::norm::{self, NormShape};
use super::unary_node::backward_unary;

/// Normalisation over C, H, W per sample, then `* gamma[c] + beta[c]`, then
/// LeakyReLU(`slope`) (`slope = 1` is no activation).
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FastNormBackend: Backend {
    /// `x` `[B, C, H, W]`, `gamma` and `beta` `[C]` → `[B, C, H, W]`.
    fn fast_norm_act(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        slope: f32,
    ) -> FloatTensor<Self>;

    /// LeakyReLU(`slope`) of `x` (any shape).
    fn fast_leaky_relu(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self>;
}

/// The backward kernels the autodiff nodes call on the inner backend.
pub(crate) trait NormKernels: Backend {
    /// `(dx, dgamma, dbeta)` of [`FastNormBackend::fast_norm_act`] for the output gradient `dy`.
    fn norm_act_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        eps: f64,
        slope: f32,
    ) -> [FloatTensor<Self>; 3];

    /// `dx` of [`FastNormBackend::fast_leaky_relu`] for the output gradient `dy`,
    /// from the op's output `y` (see [`norm::leaky_relu_backward`]).
    fn leaky_relu_backward(
        y: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        slope: f32,
    ) -> FloatTensor<Self>;
}

fn shape_of(x: &FlexTensor) -> NormShape {
    let [batch, c, h, w] = x.shape().dims();
    NormShape {
        batch,
        c,
        plane: h * w,
    }
}

/// LeakyReLU slope, or `None` for slope 1 (identity).
fn activation(slope: f32) -> Option<f32> {
    (slope != 1.0).then_some(slope)
}

impl FastNormBackend for Flex {
    fn fast_norm_act(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        eps: f64,
        slope: f32,
    ) -> FlexTensor {
        let s = shape_of(&x);
        let y = norm::forward(
            &s,
            &flex_values(&x),
            &flex_values(&gamma),
            &flex_values(&beta),
            eps,
            activation(slope),
        );
        flex_tensor(y, x.shape().dims::<4>())
    }

    fn fast_leaky_relu(x: FlexTensor, slope: f32) -> FlexTensor {
        let y = norm::leaky_relu(&flex_values(&x), slope);
        FlexTensor::from_data(TensorData::new(y, x.shape()))
    }
}

impl NormKernels for Flex {
    fn norm_act_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        dy: FlexTensor,
        eps: f64,
        slope: f32,
    ) -> [FlexTensor; 3] {
        let s = shape_of(&x);
        let (dx, dg, db) = norm::backward(
            &s,
            &flex_values(&x),
            &flex_values(&gamma),
            &flex_values(&beta),
            &flex_values(&dy),
            eps,
            activation(slope),
        );
        [
            flex_tensor(dx, x.shape().dims::<4>()),
            flex_tensor(dg, [s.c]),
            flex_tensor(db, [s.c]),
        ]
    }

    fn leaky_relu_backward(y: FlexTensor, dy: FlexTensor, slope: f32) -> FlexTensor {
        let dx = norm::leaky_relu_backward(&flex_values(&y), &flex_values(&dy), slope);
        FlexTensor::from_data(TensorData::new(dx, y.shape()))
    }
}

/// The autodiff node of the lone LeakyReLU / ReLU: keeps the *output* for the
/// sign. The next layer (a conv) keeps that same tensor for its own backward,
/// so the input, a conv's output, is freed after the forward: Burn's ReLU keeps
/// its input, and VGG's conv outputs were ~290 MB of a batch-4 step's peak.
#[derive(Debug)]
struct LeakyReluNode;

impl<B: Backend + NormKernels> Backward<B, 1> for LeakyReluNode {
    type State = (FloatTensor<B>, f32);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        backward_unary::<B, _>(ops, grads, |(y, slope), dy| {
            B::leaky_relu_backward(y, dy, slope)
        });
    }
}

/// The autodiff node: keeps `x`, `gamma` and `beta` (the statistics are recomputed).
#[derive(Debug)]
struct NormActNode;

impl<B: Backend + NormKernels> Backward<B, 3> for NormActNode {
    type State = (NodeId, NodeId, NodeId, f64, f32);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let dy = grads.consume::<B>(&ops.node);
        let (x_id, g_id, b_id, eps, slope) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_id);
        let gamma = checkpointer.retrieve_node_output::<FloatTensor<B>>(g_id);
        let beta = checkpointer.retrieve_node_output::<FloatTensor<B>>(b_id);
        let parts = B::norm_act_backward(x, gamma, beta, dy, eps, slope);
        for (parent, grad) in ops.parents.into_iter().zip(parts) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + FastNormBackend + NormKernels, C: CheckpointStrategy> FastNormBackend
    for Autodiff<B, C>
{
    fn fast_norm_act(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        slope: f32,
    ) -> FloatTensor<Self> {
        match NormActNode
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let ids = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&gamma),
                    prep.checkpoint(&beta),
                );
                let out = B::fast_norm_act(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    eps,
                    slope,
                );
                prep.finish((ids.0, ids.1, ids.2, eps, slope), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_norm_act(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                eps,
                slope,
            )),
        }
    }

    fn fast_leaky_relu(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self> {
        // ReLU by the inner backend's own op: Flex rewrites a buffer nobody else
        // holds in place, and neither this node nor anything else needs the input.
        let forward = |x| match slope == 0.0 {
            true => B::relu(x),
            false => B::fast_leaky_relu(x, slope),
        };
        match LeakyReluNode
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = forward(x.into_primitive());
                prep.finish((y.clone(), slope), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.into_primitive())),
        }
    }
}

/// LeakyReLU(`slope`): one pass each way on Flex, `burn::tensor::activation::leaky_relu` elsewhere.
pub fn leaky_relu_act(x: Tensor<4>, slope: f64) -> Tensor<4> {
    if !uses_cpu_kernels(&x.device(), x.dtype()) {
        return leaky_relu(x, slope);
    }
    Tensor::from_dispatch(<Dispatch as FastNormBackend>::fast_leaky_relu(
        x.into_dispatch(),
        slope as f32,
    ))
}

/// ReLU: [`leaky_relu_act`] with slope 0 on Flex (its node keeps the output, not
/// the input), `burn::tensor::activation::relu` elsewhere.
pub fn relu_act(x: Tensor<4>) -> Tensor<4> {
    if !uses_cpu_kernels(&x.device(), x.dtype()) {
        return relu(x);
    }
    leaky_relu_act(x, 0.0)
}

/// Whether [`layer_norm_act`] takes the CPU kernels for this device.
pub(crate) fn uses_cpu_kernels(device: &Device, dtype: DType) -> bool {
    device.clone().inner() == Device::flex() && dtype == DType::F32
}

/// `[B, C, H, W]` → `[B, C, H, W]`: each sample normalised over C, H, W (population
/// variance + `eps`), scaled by `gamma` `[C]`, shifted by `beta` `[C]`, then
/// LeakyReLU(`slope`) when given. The CPU kernels on Flex, [`layer_norm_ops`]
/// otherwise.
pub fn layer_norm_act(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
    slope: Option<f64>,
) -> Tensor<4> {
    if !uses_cpu_kernels(&x.device(), x.dtype()) {
        let y = layer_norm_ops(x, gamma, beta, eps);
        return match slope {
            Some(k) => leaky_relu(y, k),
            None => y,
        };
    }
    let out = <Dispatch as FastNormBackend>::fast_norm_act(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        eps,
        slope.map_or(1.0, |k| k as f32),
    );
    Tensor::from_dispatch(out)
}

/// The norm from Burn ops. The mean runs as three nested per-axis means rather
/// than one reduction over C*H*W: on wgpu (seen on Mesa lavapipe) Burn 0.22's
/// single large reduction lost accuracy above ~2^18 elements (0.07 error on a
/// 64x72x96 map, found by `tests/wgpu.rs`), while equal-count nested means are
/// exact and every reduction stays small.
pub fn layer_norm_ops(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, eps: f64) -> Tensor<4> {
    let [_, c, _, _] = x.dims();
    let mean = x.clone().mean_dim(3).mean_dim(2).mean_dim(1); // [B, 1, 1, 1]
    let centered = x - mean;
    let var = centered
        .clone()
        .square()
        .mean_dim(3)
        .mean_dim(2)
        .mean_dim(1); // [B, 1, 1, 1]
    let normalized = centered / var.add_scalar(eps).sqrt();
    normalized * gamma.reshape([1, c, 1, 1]) + beta.reshape([1, c, 1, 1])
}
