//! Checks against a reference nobody here computed: EIFs written, and measured, by the official
//! `aws-nitro-enclaves-image-format` crate 0.8.1 (the library `nitro-cli build-enclave` and
//! `describe-eif` use). `reference/generate.sh` produced `tests/data/reference/`; see
//! `reference/README.md`.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use common::{eif_build, run};
use eif_build::describe::{BuildMetadata, ImageMetadata};
use eif_build::eif::{self, SectionKind, SectionSource};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/reference")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap_or_else(|e| panic!("{}: {e}", data(name).display()))
}

/// The measurements the reference crate printed for one of its images.
fn reference_measurements(name: &str) -> serde_json::Value {
    let record: serde_json::Value = serde_json::from_slice(&read(name)).unwrap();
    record["Measurements"].clone()
}

/// The metadata the reference generator wrote (its `EifIdentityInfo`).
fn reference_metadata() -> ImageMetadata {
    ImageMetadata {
        image_name: "reference".to_string(),
        image_version: "1.0".to_string(),
        build: BuildMetadata {
            build_time: "1970-01-01T00:00:00+00:00".to_string(),
            build_tool: "eif-reference".to_string(),
            build_tool_version: "aws-nitro-enclaves-image-format 0.8.1".to_string(),
            operating_system: "Generic Linux".to_string(),
            kernel_version: "Unknown version".to_string(),
        },
        docker_info: serde_json::Value::Null,
        custom: serde_json::Value::Null,
    }
}

fn assert_same_pcrs(
    ours: &eif_build::Measurements,
    reference: &serde_json::Value,
    with_pcr8: bool,
) {
    let json = ours.to_describe_json();
    assert_eq!(reference["PCR0"].as_str(), Some(json.pcr0.as_str()), "PCR0");
    assert_eq!(reference["PCR1"].as_str(), Some(json.pcr1.as_str()), "PCR1");
    assert_eq!(reference["PCR2"].as_str(), Some(json.pcr2.as_str()), "PCR2");
    if with_pcr8 {
        assert_eq!(reference["PCR8"].as_str(), json.pcr8.as_deref(), "PCR8");
        assert!(json.pcr8.is_some());
    } else {
        assert!(reference.get("PCR8").is_none());
        assert!(json.pcr8.is_none());
    }
}

#[test]
fn measures_the_reference_unsigned_image_like_the_reference() {
    let image = eif::read_image_file(&data("unsigned.eif")).unwrap();
    assert_same_pcrs(
        &image.measurements,
        &reference_measurements("unsigned.json"),
        false,
    );
    assert_eq!(image.header.version, 4);
    assert_eq!(
        image.sections.iter().map(|s| s.kind).collect::<Vec<_>>(),
        [
            SectionKind::Kernel,
            SectionKind::Cmdline,
            SectionKind::Metadata,
            SectionKind::Ramdisk,
            SectionKind::Ramdisk,
            SectionKind::Ramdisk
        ]
    );
    assert_eq!(
        image.metadata.unwrap(),
        serde_json::to_value(reference_metadata()).unwrap()
    );
}

#[test]
fn measures_the_reference_signed_image_like_the_reference_pcr8_included() {
    let image = eif::read_image_file(&data("signed.eif")).unwrap();
    assert_same_pcrs(
        &image.measurements,
        &reference_measurements("signed.json"),
        true,
    );
    assert_eq!(
        image.signing_certificate_pem.unwrap(),
        read("signing-cert.pem")
    );
    assert_eq!(image.sections.last().unwrap().kind, SectionKind::Signature);
}

#[test]
fn the_cli_prints_the_reference_measurements() {
    for (image, record, signed) in [
        ("unsigned.eif", "unsigned.json", false),
        ("signed.eif", "signed.json", true),
    ] {
        let (output, stdout, stderr) = run(eif_build().arg("measure").arg(data(image)));
        assert!(output.status.success(), "{stderr}");
        let printed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let reference = reference_measurements(record);
        for name in ["PCR0", "PCR1", "PCR2", "PCR8"] {
            assert_eq!(
                printed["Measurements"].get(name),
                reference.get(name),
                "{image} {name}"
            );
        }
        assert_eq!(printed["IsSigned"], signed);
        assert_eq!(printed["CheckCRC"], true);
        assert_eq!(printed["ImageName"], "reference");
        assert_eq!(printed["Metadata"]["BuildTool"], "eif-reference");
    }
}

/// Our writer, given the reference's inputs and metadata, writes the reference's bytes.
#[test]
fn writes_the_reference_image_byte_for_byte() {
    let metadata = serde_json::to_vec(&reference_metadata()).unwrap();
    let mut sections = vec![
        SectionSource::bytes(SectionKind::Kernel, read("kernel.bin")),
        SectionSource::bytes(SectionKind::Cmdline, read("cmdline.txt")),
        SectionSource::bytes(SectionKind::Metadata, metadata),
    ];
    for i in 0..3 {
        sections.push(SectionSource::bytes(
            SectionKind::Ramdisk,
            read(&format!("ramdisk-{i}.bin")),
        ));
    }
    let mut out = Cursor::new(Vec::new());
    let written = eif::write_image(&mut out, &sections, 0).unwrap();
    let reference = read("unsigned.eif");
    let ours = out.into_inner();
    assert_eq!(ours.len(), reference.len());
    if let Some(at) = ours.iter().zip(&reference).position(|(a, b)| a != b) {
        panic!("first difference at offset {at}");
    }
    assert_same_pcrs(
        &written.measurements,
        &reference_measurements("unsigned.json"),
        false,
    );
}

/// Damage in the reference image is caught (its CRC is the reference's, not ours).
#[test]
fn a_damaged_reference_image_is_refused() {
    let mut bytes = read("signed.eif");
    let at = bytes.len() - 20;
    bytes[at] ^= 0x04;
    assert!(matches!(
        eif::read_image(Cursor::new(&bytes), bytes.len() as u64),
        Err(eif::EifError::CrcMismatch { .. })
    ));
}

/// The reference signature checks under our COSE code (so our Sig_structure and payload
/// encodings are the official ones), and a signature over another PCR0 does not.
#[test]
fn checks_the_reference_signature_and_refuses_a_foreign_one() {
    let bytes = read("signed.eif");
    let image = eif::read_image_file(&data("signed.eif")).unwrap();
    let section = image.sections.last().unwrap();
    let start = (section.offset + 12) as usize;
    let (pem, cose) =
        eif::decode_signature_section(&bytes[start..start + section.size as usize]).unwrap();
    let der = eif::pem_certificate_to_der(&pem).unwrap();
    eif_build::sign::check_signature(&der, &cose, &image.measurements.pcr0).unwrap();
    // The unsigned reference image's PCR0 differs: the same signature must not cover it.
    let other = eif::read_image_file(&data("unsigned.eif")).unwrap();
    assert!(matches!(
        eif_build::sign::check_signature(&der, &cose, &other.measurements.pcr0),
        Err(eif_build::sign::SignError::WrongPayload)
    ));
    // One flipped bit in the ECDSA signature (the COSE structure's last bytes).
    let mut forged = cose.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(matches!(
        eif_build::sign::check_signature(&der, &forged, &image.measurements.pcr0),
        Err(eif_build::sign::SignError::BadSignature)
    ));
}
