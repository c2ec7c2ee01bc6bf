//! Reproducible AWS Nitro Enclaves images (EIF) for the attested-inference enclave, and their
//! PCR measurements, without Docker.
//!
//! - [`image`]: the image this project runs (boot ramdisk with the Nitro `init`, application
//!   ramdisk with the statically linked `enclave` binary, the model and a configuration that
//!   carries the model's expected SHA-256) and [`image::build`].
//! - [`cpio`]: deterministic cpio "newc" archives (sorted, owners 0, time 0, fixed modes).
//! - [`eif`]: the EIF v4 container: streaming writer and a strict reader.
//! - [`pcr`]: PCR0/1/2/8 as the Nitro hypervisor and `nitro-cli` compute them.
//! - [`sign`]: signed images (COSE_Sign1 ES384 over PCR0) and their checks.
//! - [`describe`]: the `nitro-cli describe-eif` JSON shape both subcommands print.
//!
//! The same inputs give the same bytes on any machine: nothing from the build machine (time,
//! owners, directory order, paths) enters the image.

#![forbid(unsafe_code)]

pub mod cpio;
pub mod describe;
pub mod eif;
pub mod image;
pub mod pcr;
pub mod sign;

pub use describe::DescribeEif;
pub use eif::{EifError, read_image_file};
pub use image::{BuildError, BuildInputs, BuiltImage, build};
pub use pcr::Measurements;
