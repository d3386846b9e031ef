//! The three networks of AnimeGANv2: generator, discriminator and the frozen VGG19
//! loss network, plus the building blocks they share.

pub mod blocks;
pub mod cpu;
pub mod discriminator;
pub mod fast_conv;
pub mod fast_norm;
pub mod fast_pool;
pub(crate) mod fast_upsample;
pub mod generator;
mod unary_node;
pub mod upsample;
pub mod vgg;
pub(crate) mod window_ops;

pub use discriminator::{Discriminator, DiscriminatorConfig};
pub use generator::{Generator, GeneratorConfig};
pub use upsample::UpsampleMode;
pub use vgg::{Vgg19, VggSource};
