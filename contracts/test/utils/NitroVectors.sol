// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice The real AWS Nitro attestation documents of `shared/vectors/nitro/`, shared by the
/// Nitro route's tests. Others' data: read in place (CI has `shared/` beside the checkout,
/// foundry.toml allows reading it), never copied into the repository.
abstract contract NitroVectors {
    /// Relative to `contracts/`.
    string internal constant VECTORS = "../../shared/vectors/nitro/";
    /// SHA-256 of the AWS Nitro Enclaves root G1 certificate's DER (shared/vectors/nitro/README.md).
    bytes32 internal constant AWS_ROOT_SHA256 = 0x641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b;

    /// The documents' names (`<name>.cbor`, facts in `<name>.json`), in file-name order.
    function _documentNames() internal pure returns (string[8] memory) {
        return [
            "evervault_beta_debug_2022-10-12",
            "evervault_beta_valid_2022-10-13",
            "evervault_ga_2023-09-18",
            "evervault_tls_debug_2023-01-18",
            "evervault_tls_nondebug_2023-01-18",
            "marlin_aws_2024-12-13",
            "marlin_aws_pcr16_2025-04-29",
            "marlin_verifier_2024-08-07"
        ];
    }
}
