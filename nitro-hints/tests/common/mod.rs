//! Shared by this crate's integration tests.

use std::path::PathBuf;

/// The real AWS Nitro documents (`shared/vectors/nitro/` beside the repository, or
/// `$NITRO_VECTORS_DIR`): others' test data, read in place.
pub(crate) fn vectors_dir() -> PathBuf {
    std::env::var_os("NITRO_VECTORS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/nitro"),
        PathBuf::from,
    )
}
