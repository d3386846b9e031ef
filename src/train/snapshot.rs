//! The trainer's current generator, copied to host memory on request
//! ([`super::TrainCommand::Snapshot`]) so Convert can use the weights of this very
//! step without waiting for, or writing, a checkpoint.

use std::collections::HashMap;

use burn::tensor::{Device, TensorData};

use crate::interop::params::{NamedParam, collect_params, params_blake3, replace_params};
use crate::model::{Generator, GeneratorConfig, UpsampleMode};

/// A generator's weights at one step, device-free (plain `f32`s), so it can cross
/// from the training thread to any other device.
#[derive(Debug)]
pub struct GeneratorSnapshot {
    /// Steps the generator had completed.
    pub step: usize,
    /// Decoder upsampling rule of the run.
    pub upsample: UpsampleMode,
    /// BLAKE3 of the weights ([`crate::interop::params::weights_blake3`]).
    pub blake3: String,
    /// Every parameter and running state, by Burn path.
    params: Vec<NamedParam>,
}

impl GeneratorSnapshot {
    /// Reads `generator` (any device; trainable or not) at `step`.
    pub fn capture(generator: &Generator, step: usize) -> Self {
        let params = collect_params(generator);
        Self {
            step,
            upsample: generator.upsample,
            blake3: params_blake3(&params),
            params,
        }
    }

    /// A generator with these weights on `device`.
    pub fn build(&self, device: &Device) -> Generator {
        let values: HashMap<String, TensorData> = self
            .params
            .iter()
            .map(|p| {
                (
                    p.path.clone(),
                    TensorData::new(p.values.clone(), p.shape.clone()),
                )
            })
            .collect();
        let fresh = GeneratorConfig::new()
            .with_upsample(self.upsample)
            .init(device);
        replace_params(fresh, values)
    }
}

/// Equal when the step and the weights are (the hash stands for the values).
impl PartialEq for GeneratorSnapshot {
    fn eq(&self, other: &Self) -> bool {
        self.step == other.step && self.upsample == other.upsample && self.blake3 == other.blake3
    }
}

impl Eq for GeneratorSnapshot {}
