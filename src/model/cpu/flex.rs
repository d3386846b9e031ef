//! Flex tensors in and out of the CPU training kernels ([`super::conv`],
//! [`super::norm`]), for the backend extensions in [`crate::model::fast_conv`] and
//! [`crate::model::fast_norm`].
//!
//! These helpers live here, below both the kernels and the extensions, so that
//! the extensions depend on `cpu::flex` and nothing in `cpu` depends on them.
//!
//! Reading values is infallible by construction: a backend extension op must
//! return a tensor (it has no error channel), so instead of a fallible readback
//! with a default on failure, [`flex_values`] only uses operations that cannot
//! fail for a float tensor in host memory.

use std::borrow::Cow;

use burn::backend::Flex;
use burn::backend::FloatDType;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::tensor::TensorData;

/// The `f32` values of a Flex float tensor in logical (row-major) order:
/// borrowed when the tensor already is a contiguous `f32` buffer, copied
/// otherwise (a strided view, or another float dtype, converted).
///
/// Never empty for a non-empty tensor: the old `unwrap_or_default` turned a
/// failed conversion into an empty vector, i.e. a zero-sized gradient or image.
pub(crate) fn flex_values(t: &FlexTensor) -> Cow<'_, [f32]> {
    if let Some(s) = t.as_slice::<f32>() {
        return Cow::Borrowed(s);
    }
    // Flex's own cast (a no-op for f32) then a contiguous copy: both infallible
    // for float tensors, and the result is an `f32` buffer of exactly the
    // tensor's elements, so `storage` (which asserts only the dtype) is the values.
    let contiguous = Flex::float_cast(t.clone(), FloatDType::F32).to_contiguous();
    let values = contiguous.storage::<f32>().to_vec();
    debug_assert_eq!(values.len(), contiguous.layout().num_elements());
    Cow::Owned(values)
}

/// A Flex tensor owning `values` (no copy), of shape `shape`.
///
/// # Panics
/// If `values.len()` is not the product of `shape` (Burn's check).
pub(crate) fn flex_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::TensorMetadata;

    #[test]
    fn contiguous_f32_is_borrowed() {
        let t = flex_tensor(vec![1.0, 2.0, 3.0, 4.0], [2, 2]);
        let v = flex_values(&t);
        assert!(matches!(v, Cow::Borrowed(_)));
        assert_eq!(&*v, &[1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn strided_view_is_read_in_logical_order() {
        // [[1, 2, 3], [4, 5, 6]] transposed: a zero-copy strided view.
        let t = flex_tensor(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]);
        let t = Flex::float_swap_dims(t, 0, 1);
        assert_eq!(t.shape().dims::<2>(), [3, 2]);
        assert_eq!(&*flex_values(&t), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn other_float_dtypes_are_converted_not_dropped() {
        // The old helper returned an empty vector for any non-f32 tensor.
        let t = FlexTensor::from_data(TensorData::new(vec![0.5f64, -2.0, 8.25], [3]));
        assert_eq!(&*flex_values(&t), &[0.5, -2.0, 8.25]);
        let t = FlexTensor::from_data(TensorData::new(
            vec![
                burn::backend::f16::from_f32(1.5),
                burn::backend::f16::from_f32(-3.0),
            ],
            [2],
        ));
        assert_eq!(&*flex_values(&t), &[1.5, -3.0]);
    }
}
