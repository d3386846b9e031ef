//! Reading and replacing a module's float parameters by their Burn path
//! (`block_a.0.conv.weight`): the bridge between foreign key layouts and modules.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};

/// One parameter read out of a module.
#[derive(Debug, Clone)]
pub struct NamedParam {
    /// Dot-separated Burn path.
    pub path: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major f32 values.
    pub values: Vec<f32>,
}

/// Every float parameter (and running state) of `module`, with its path, in visit order.
pub fn collect_params<M: Module>(module: &M) -> Vec<NamedParam> {
    let mut visitor = Collector {
        stack: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.out
}

/// Paths and shapes of every float parameter, without reading values.
pub fn param_shapes<M: Module>(module: &M) -> Vec<(String, Vec<usize>)> {
    let mut visitor = ShapeCollector {
        stack: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.out
}

/// Replaces the parameters named in `values` (Burn path -> data). Shapes must already
/// have been checked against [`param_shapes`]; unnamed parameters are kept.
pub fn replace_params<M: Module>(module: M, values: HashMap<String, TensorData>) -> M {
    let mut mapper = Replacer {
        stack: Vec::new(),
        values,
    };
    module.map(&mut mapper)
}

/// Copies every parameter (running states included) of `from` into `into`, through
/// host memory: `into` may live on another device or be trainable where `from` is not.
pub fn copy_params<M: Module>(from: &M, into: M) -> M {
    let values = collect_params(from)
        .into_iter()
        .map(|p| (p.path, TensorData::new(p.values, p.shape)))
        .collect();
    replace_params(into, values)
}

/// BLAKE3 over every parameter's path, shape and little-endian values, in visit
/// order: equal for equal weights whatever file they were read from.
pub fn weights_blake3<M: Module>(module: &M) -> String {
    params_blake3(&collect_params(module))
}

/// [`weights_blake3`] of parameters already read out (no second device read-back).
pub fn params_blake3(params: &[NamedParam]) -> String {
    let mut hasher = blake3::Hasher::new();
    for p in params {
        hasher.update(p.path.as_bytes());
        for d in &p.shape {
            hasher.update(&(*d as u64).to_le_bytes());
        }
        for v in &p.values {
            hasher.update(&v.to_le_bytes());
        }
    }
    hasher.finalize().to_hex().to_string()
}

struct Collector {
    stack: Vec<String>,
    out: Vec<NamedParam>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let data = param.val().into_data().convert::<f32>();
        let shape = data.shape().to_vec();
        let values = data.try_to_vec::<f32>().unwrap_or_default();
        self.out.push(NamedParam {
            path: self.stack.join("."),
            shape,
            values,
        });
    }
}

struct ShapeCollector {
    stack: Vec<String>,
    out: Vec<(String, Vec<usize>)>,
}

impl ModuleVisitor for ShapeCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out
            .push((self.stack.join("."), param.lazy_shape().to_vec()));
    }
}

struct Replacer {
    stack: Vec<String>,
    values: HashMap<String, TensorData>,
}

impl ModuleMapper for Replacer {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(data) = self.values.remove(&self.stack.join(".")) else {
            return param;
        };
        param.map(|old| {
            let tracked = old.is_require_grad();
            let new = Tensor::<D>::from_data(data, &old.device());
            if tracked { new.require_grad() } else { new }
        })
    }
}
