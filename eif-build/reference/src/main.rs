//! Writes reference EIFs with the official `aws-nitro-enclaves-image-format` crate, and the
//! measurements that crate computes for them, so that `eif-build` is checked against an
//! implementation it does not share code with.
//!
//! Usage: `eif-reference <out-dir> <signing-cert.pem> <signing-key.pem>`
//!
//! Inputs are synthetic and deterministic (a formula, below), written next to the images so the
//! tests can rebuild them: `kernel.bin`, `cmdline.txt`, `ramdisk-0.bin` .. `ramdisk-2.bin`.
//! Outputs: `unsigned.eif` + `unsigned.json`, `signed.eif` + `signed.json`.

use std::fs;
use std::path::{Path, PathBuf};

use aws_nitro_enclaves_image_format::defs::{EifBuildInfo, EifIdentityInfo};
use aws_nitro_enclaves_image_format::utils::eif_reader::EifReader;
use aws_nitro_enclaves_image_format::utils::{EifBuilder, SignKeyData};
use serde_json::json;
use sha2::{Digest, Sha384};

/// The pattern every synthetic input is made of: easy to regenerate, not all one byte.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + usize::from(seed) * 17 + 7) % 251) as u8)
        .collect()
}

const CMDLINE: &str = "reboot=k panic=30 pci=off nomodules console=ttyS0 \
random.trust_cpu=on virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6";

fn identity() -> EifIdentityInfo {
    EifIdentityInfo {
        img_name: "reference".to_string(),
        img_version: "1.0".to_string(),
        build_info: EifBuildInfo {
            build_time: "1970-01-01T00:00:00+00:00".to_string(),
            build_tool: "eif-reference".to_string(),
            build_tool_version: "aws-nitro-enclaves-image-format 0.8.1".to_string(),
            img_os: "Generic Linux".to_string(),
            img_kernel: "Unknown version".to_string(),
        },
        docker_info: json!(null),
        custom_info: json!(null),
    }
}

fn build(out: &Path, name: &str, ramdisks: &[PathBuf], sign: Option<SignKeyData>) {
    let eif_path = out.join(format!("{name}.eif"));
    let mut file = fs::File::create(&eif_path).expect("create the EIF");
    let mut builder = EifBuilder::new(
        &out.join("kernel.bin"),
        CMDLINE.to_string(),
        sign,
        Sha384::new(),
        0,
        identity(),
    );
    for ramdisk in ramdisks {
        builder.add_ramdisk(ramdisk);
    }
    let built = builder.write_to(&mut file);
    drop(file);

    // What `nitro-cli describe-eif` computes from the file itself.
    let mut reader = EifReader::from_eif(eif_path.display().to_string()).expect("read back");
    assert!(reader.check_crc(), "the reference EIF's CRC must check");
    let described = reader.get_measurements().expect("measure");
    assert_eq!(built, described, "builder and reader must agree");
    let record = json!({
        "tool": "aws-nitro-enclaves-image-format 0.8.1 (EifBuilder::write_to, EifReader::get_measurements)",
        "file": format!("{name}.eif"),
        "Measurements": described,
        "EifVersion": reader.get_header().version,
        "CheckCRC": reader.check_crc(),
    });
    fs::write(
        out.join(format!("{name}.json")),
        serde_json::to_string_pretty(&record).unwrap() + "\n",
    )
    .expect("write the measurements");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, cert, key] = args.as_slice() else {
        eprintln!("usage: eif-reference <out-dir> <signing-cert.pem> <signing-key.pem>");
        std::process::exit(2);
    };
    let out = PathBuf::from(out);
    fs::create_dir_all(&out).expect("create the output directory");
    fs::write(out.join("kernel.bin"), pattern(4099, 1)).unwrap();
    fs::write(out.join("cmdline.txt"), CMDLINE).unwrap();
    let sizes = [1500, 2501, 10];
    let ramdisks: Vec<PathBuf> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let path = out.join(format!("ramdisk-{i}.bin"));
            fs::write(&path, pattern(len, 2 + i as u8)).unwrap();
            path
        })
        .collect();

    build(&out, "unsigned", &ramdisks, None);
    let sign = SignKeyData::new(key, Path::new(cert)).expect("signing key and certificate");
    build(&out, "signed", &ramdisks[..2], Some(sign));
}
