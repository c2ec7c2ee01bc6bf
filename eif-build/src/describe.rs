//! The JSON that `eif-build build` and `eif-build measure` print: the shape of
//! `nitro-cli describe-eif` (`EifVersion`, `Measurements`, `IsSigned`, `CheckCRC`, `ImageName`,
//! `ImageVersion`, `Metadata`), so scripts written for `nitro-cli` read it unchanged.

use serde::{Deserialize, Serialize};

use crate::eif::ImageDescription;
use crate::pcr::MeasurementsJson;

/// The build metadata section, in the JSON shape `nitro-cli` writes (`EifIdentityInfo`).
/// It is not measured; `eif-build` fills it with fixed values so images stay byte-identical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMetadata {
    /// Image name.
    #[serde(rename = "ImageName")]
    pub image_name: String,
    /// Image version.
    #[serde(rename = "ImageVersion")]
    pub image_version: String,
    /// Tool and time of the build.
    #[serde(rename = "BuildMetadata")]
    pub build: BuildMetadata,
    /// Docker image information (`null`: no Docker involved).
    #[serde(rename = "DockerInfo")]
    pub docker_info: serde_json::Value,
    /// Free-form metadata.
    #[serde(rename = "CustomMetadata")]
    pub custom: serde_json::Value,
}

/// The `BuildMetadata` object of [`ImageMetadata`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildMetadata {
    /// RFC 3339 time (fixed by `eif-build`: no build time leaks into the image).
    #[serde(rename = "BuildTime")]
    pub build_time: String,
    /// The tool's name.
    #[serde(rename = "BuildTool")]
    pub build_tool: String,
    /// The tool's version.
    #[serde(rename = "BuildToolVersion")]
    pub build_tool_version: String,
    /// The enclave's operating system.
    #[serde(rename = "OperatingSystem")]
    pub operating_system: String,
    /// The enclave kernel's version.
    #[serde(rename = "KernelVersion")]
    pub kernel_version: String,
}

/// `nitro-cli describe-eif` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribeEif {
    /// Format version.
    #[serde(rename = "EifVersion")]
    pub eif_version: u16,
    /// The PCRs.
    #[serde(rename = "Measurements")]
    pub measurements: MeasurementsJson,
    /// Whether the image carries a signature section.
    #[serde(rename = "IsSigned")]
    pub is_signed: bool,
    /// Whether the CRC matched (always true: a mismatch is an error here).
    #[serde(rename = "CheckCRC")]
    pub check_crc: bool,
    /// For signed images: whether the signature over PCR0 verified under the certificate
    /// (always true: a bad signature is an error here).
    #[serde(
        rename = "SignatureCheck",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub signature_check: Option<bool>,
    /// The metadata's image name.
    #[serde(rename = "ImageName", skip_serializing_if = "Option::is_none", default)]
    pub image_name: Option<String>,
    /// The metadata's image version.
    #[serde(
        rename = "ImageVersion",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub image_version: Option<String>,
    /// The build metadata, flattened as `nitro-cli` prints it.
    #[serde(rename = "Metadata", skip_serializing_if = "Option::is_none", default)]
    pub metadata: Option<serde_json::Value>,
}

impl DescribeEif {
    /// The description of a read image.
    #[must_use]
    pub fn from_image(image: &ImageDescription) -> Self {
        let metadata = image.metadata.as_ref();
        let text = |key: &str| {
            metadata
                .and_then(|m| m.get(key))
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        Self {
            eif_version: image.header.version,
            measurements: image.measurements.to_describe_json(),
            is_signed: image.signing_certificate_pem.is_some(),
            check_crc: true,
            signature_check: image.signing_certificate_pem.as_ref().map(|_| true),
            image_name: text("ImageName"),
            image_version: text("ImageVersion"),
            metadata: metadata.map(flatten_metadata),
        }
    }
}

/// `nitro-cli`'s `Metadata` object: the build fields, `DockerInfo`, and the custom metadata's
/// keys merged in.
#[must_use]
pub fn flatten_metadata(metadata: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    if let Some(build) = metadata.get("BuildMetadata").and_then(|b| b.as_object()) {
        for (key, value) in build {
            out.insert(key.clone(), value.clone());
        }
    }
    out.insert(
        "DockerInfo".to_string(),
        metadata
            .get("DockerInfo")
            .cloned()
            .unwrap_or(serde_json::Value::Null),
    );
    if let Some(custom) = metadata.get("CustomMetadata").and_then(|c| c.as_object()) {
        for (key, value) in custom {
            out.insert(key.clone(), value.clone());
        }
    }
    serde_json::Value::Object(out)
}
