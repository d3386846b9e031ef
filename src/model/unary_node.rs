//! The backward shared by the CPU training ops' one-input autodiff nodes
//! (LeakyReLU, max pool, bilinear resize).

use burn::backend::Backend;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::Ops;
use burn::backend::tensor::FloatTensor;

/// Takes the node's output gradient and, when its one parent needs a gradient,
/// registers `input_grad(state, dy)` for it.
pub(crate) fn backward_unary<B: Backend, S>(
    ops: Ops<S, 1>,
    grads: &mut Gradients,
    input_grad: impl FnOnce(S, FloatTensor<B>) -> FloatTensor<B>,
) {
    let dy = grads.consume::<B>(&ops.node);
    let [parent] = ops.parents;
    if let Some(node) = parent {
        grads.register::<B>(node.id, input_grad(ops.state, dy));
    }
}
