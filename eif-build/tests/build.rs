//! `eif-build build` and `measure` as processes: reproducibility, which PCR each input moves,
//! the checks that refuse bad inputs, and the ramdisks as GNU cpio reads them.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{Inputs, build_ok, eif_build, measure, pattern, pcr, run, static_elf};
use eif_build::eif::SectionKind;

/// Copies every input into a fresh directory with other modes and timestamps.
fn copy_elsewhere(inputs: &Inputs) -> Inputs {
    let copy = Inputs::new(1);
    for (from, to) in [
        (&inputs.kernel, &copy.kernel),
        (&inputs.init, &copy.init),
        (&inputs.nsm, &copy.nsm),
        (&inputs.binary, &copy.binary),
        (&inputs.model, &copy.model),
    ] {
        std::fs::copy(from, to).unwrap();
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = std::fs::File::options().write(true).open(to).unwrap();
        file.set_modified(
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567_890),
        )
        .unwrap();
    }
    Inputs {
        model_sha256: inputs.model_sha256.clone(),
        ..copy
    }
}

#[test]
fn two_builds_are_byte_identical_and_measure_prints_what_build_printed() {
    let inputs = Inputs::new(300_001);
    let elsewhere = copy_elsewhere(&inputs);
    let out = tempfile::tempdir().unwrap();
    let first_path = out.path().join("first.eif");
    let second_path = out.path().join("second.eif");

    let (first_output, first_stdout, first_stderr) = run(&mut inputs.build_command(&first_path));
    assert!(first_output.status.success(), "{first_stderr}");
    let (second_output, second_stdout, _) = run(&mut elsewhere.build_command(&second_path));
    assert!(second_output.status.success());

    let first = std::fs::read(&first_path).unwrap();
    assert_eq!(first, std::fs::read(&second_path).unwrap(), "images differ");
    assert_eq!(first_stdout, second_stdout, "printed measurements differ");

    let (measured, measured_stdout, _) = run(eif_build().arg("measure").arg(&first_path));
    assert!(measured.status.success());
    assert_eq!(
        measured_stdout, first_stdout,
        "measure disagrees with build"
    );

    let json: serde_json::Value = serde_json::from_str(&first_stdout).unwrap();
    assert_eq!(json["EifVersion"], 4);
    assert_eq!(json["IsSigned"], false);
    assert_eq!(json["CheckCRC"], true);
    assert_eq!(json["Measurements"]["HashAlgorithm"], "Sha384 { ... }");
    for name in ["PCR0", "PCR1", "PCR2"] {
        let value = pcr(&json, name);
        assert_eq!(value.len(), 96);
        assert!(
            value
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
    assert!(json["Measurements"].get("PCR8").is_none());
    assert_eq!(json["Metadata"]["BuildTime"], "1970-01-01T00:00:00+00:00");
    assert_eq!(json["Metadata"]["ModelSha256"], inputs.model_sha256);
    // The stderr line tells the operator how much memory to give.
    assert!(first_stderr.contains("--memory"), "{first_stderr}");
    // No temporary file is left beside the output.
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["first.eif", "second.eif"]);
}

/// Builds, changes one input with `change`, builds again, and returns both JSONs.
fn before_and_after(
    change: impl FnOnce(&mut Inputs, &Path) -> Command,
) -> (serde_json::Value, serde_json::Value) {
    let mut inputs = Inputs::new(200_003);
    let out = tempfile::tempdir().unwrap();
    let before = inputs.build(&out.path().join("before.eif"));
    let after_path = out.path().join("after.eif");
    let mut command = change(&mut inputs, &after_path);
    let after = build_ok(&mut command);
    assert_eq!(measure(&after_path), after);
    (before, after)
}

fn assert_moved(before: &serde_json::Value, after: &serde_json::Value, moved: &[&str]) {
    for name in ["PCR0", "PCR1", "PCR2"] {
        let changed = pcr(before, name) != pcr(after, name);
        assert_eq!(
            changed,
            moved.contains(&name),
            "{name} {} but should {}",
            if changed { "changed" } else { "did not change" },
            if moved.contains(&name) {
                "change"
            } else {
                "not"
            }
        );
    }
}

#[test]
fn one_byte_of_the_model_moves_pcr2_and_pcr0_only() {
    let (before, after) = before_and_after(|inputs, out| {
        let mut model = std::fs::read(&inputs.model).unwrap();
        model[100_000] ^= 0x01;
        inputs.set_model(&model);
        inputs.build_command(out)
    });
    assert_moved(&before, &after, &["PCR0", "PCR2"]);
}

#[test]
fn one_byte_of_the_enclave_binary_moves_pcr2_and_pcr0_only() {
    let (before, after) = before_and_after(|inputs, out| {
        let mut binary = std::fs::read(&inputs.binary).unwrap();
        let last = binary.len() - 1;
        binary[last] ^= 0x80;
        std::fs::write(&inputs.binary, binary).unwrap();
        inputs.build_command(out)
    });
    assert_moved(&before, &after, &["PCR0", "PCR2"]);
}

#[test]
fn an_enclave_setting_moves_pcr2_and_pcr0_only() {
    let (before, after) = before_and_after(|inputs, out| {
        let mut command = inputs.build_command(out);
        command.args(["--env", "ENCLAVE_MAX_TOKENS=64"]);
        command
    });
    assert_moved(&before, &after, &["PCR0", "PCR2"]);
    let (before, after) = before_and_after(|inputs, out| {
        let mut command = inputs.build_command(out);
        command.args(["--vsock-port", "6000"]);
        command
    });
    assert_moved(&before, &after, &["PCR0", "PCR2"]);
}

#[test]
fn kernel_cmdline_init_and_driver_move_pcr1_and_pcr0_only() {
    let (before, after) = before_and_after(|inputs, out| {
        let mut command = inputs.build_command(out);
        command.args(["--cmdline", "console=ttyS0 panic=1"]);
        command
    });
    assert_moved(&before, &after, &["PCR0", "PCR1"]);
    for which in ["kernel", "init", "nsm"] {
        let (before, after) = before_and_after(|inputs, out| {
            let path = match which {
                "kernel" => &inputs.kernel,
                "init" => &inputs.init,
                _ => &inputs.nsm,
            };
            let mut bytes = std::fs::read(path).unwrap();
            bytes[7] ^= 0x10;
            std::fs::write(path, bytes).unwrap();
            inputs.build_command(out)
        });
        assert_moved(&before, &after, &["PCR0", "PCR1"]);
    }
}

#[test]
fn metadata_only_changes_move_no_pcr() {
    let (before, after) = before_and_after(|inputs, out| {
        let mut command = inputs.build_command(out);
        command.args(["--image-name", "renamed", "--image-version", "9"]);
        command
    });
    assert_moved(&before, &after, &[]);
    assert_eq!(after["ImageName"], "renamed");
}

#[test]
fn a_wrong_model_hash_fails_and_leaves_no_file() {
    let mut inputs = Inputs::new(10_000);
    inputs.model_sha256 = "00".repeat(32);
    let out = tempfile::tempdir().unwrap();
    let image = out.path().join("image.eif");
    let (output, stdout, stderr) = run(&mut inputs.build_command(&image));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.is_empty());
    assert!(stderr.contains("the model's SHA-256 is"), "{stderr}");
    assert!(stderr.contains(&"00".repeat(32)), "{stderr}");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "files left behind"
    );
}

/// A change made to a build command line.
type ChangeCommand<'a> = Box<dyn Fn(&mut Command) + 'a>;

#[test]
fn bad_inputs_get_clear_errors() {
    let inputs = Inputs::new(1000);
    let out = tempfile::tempdir().unwrap();
    let image = out.path().join("image.eif");
    let cases: Vec<(ChangeCommand, &str)> = vec![
        (
            Box::new(|c: &mut Command| {
                c.arg("--enclave-bin").arg("/bin/sh");
            }),
            "dynamically linked",
        ),
        (
            Box::new(|c: &mut Command| {
                c.arg("--enclave-bin").arg(&inputs.model);
            }),
            "is not a 64-bit little-endian ELF file",
        ),
        (
            Box::new(|c: &mut Command| {
                c.arg("--model").arg(inputs.dir.path().join("missing.gguf"));
            }),
            "model",
        ),
        (
            Box::new(|c: &mut Command| {
                c.arg("--init").arg(inputs.dir.path());
            }),
            "is not a regular file",
        ),
        (
            Box::new(|c: &mut Command| {
                c.args(["--model-sha256", "xyz"]);
            }),
            "--model-sha256 must be 64 hex characters",
        ),
        (
            Box::new(|c: &mut Command| {
                c.args(["--env", "lower=case"]);
            }),
            "must be NAME=value",
        ),
        (
            Box::new(|c: &mut Command| {
                c.args(["--vsock-port", "0"]);
            }),
            "vsock port 0 is reserved",
        ),
        (
            Box::new(|c: &mut Command| {
                c.args(["--cmdline", ""]);
            }),
            "kernel command line",
        ),
    ];
    for (change, expected) in cases {
        let mut command = inputs.build_command(&image);
        change(&mut command);
        let (output, _, stderr) = run(&mut command);
        assert_eq!(output.status.code(), Some(1), "{expected}: {stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr:?}"
        );
        assert!(!image.exists());
    }
    // A binary for another processor.
    let mut arm = static_elf(&pattern(100, 9));
    arm[18] = 183; // EM_AARCH64
    let arm_path = inputs.dir.path().join("arm");
    std::fs::write(&arm_path, arm).unwrap();
    let mut command = inputs.build_command(&image);
    command.arg("--enclave-bin").arg(&arm_path);
    let (output, _, stderr) = run(&mut command);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("ELF machine 183"), "{stderr}");
    // Missing arguments are clap's usage errors (exit 2).
    let (output, _, stderr) = run(eif_build().args(["build", "--kernel", "k"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("--init"), "{stderr}");
}

#[test]
fn measure_refuses_damaged_images() {
    let inputs = Inputs::new(5000);
    let out = tempfile::tempdir().unwrap();
    let image = out.path().join("image.eif");
    inputs.build(&image);
    let mut bytes = std::fs::read(&image).unwrap();
    let damaged = out.path().join("damaged.eif");
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&damaged, &bytes).unwrap();
    let (output, stdout, stderr) = run(eif_build().arg("measure").arg(&damaged));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.is_empty());
    assert!(stderr.contains("CRC mismatch"), "{stderr}");

    let truncated = out.path().join("truncated.eif");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let (output, _, stderr) = run(eif_build().arg("measure").arg(&truncated));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("truncated"), "{stderr}");

    let (output, _, stderr) = run(eif_build().arg("measure").arg(&inputs.model));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("not an EIF"), "{stderr}");

    let (output, _, stderr) = run(eif_build().arg("measure").arg(out.path().join("none.eif")));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("none.eif"), "{stderr}");
}

/// Runs GNU cpio with `args` on `archive` in `dir`.
fn cpio(args: &[&str], archive: &[u8], dir: &Path) -> String {
    use std::io::Write as _;
    let mut child = Command::new("cpio")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect(
            "GNU cpio is needed for this test: run scripts/install-deps.sh (apt-get install cpio)",
        );
    child.stdin.take().unwrap().write_all(archive).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "cpio {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // GNU cpio lists to stderr for -t -v? No: the listing goes to stdout, block counts to stderr.
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn ramdisks_unpack_with_gnu_cpio_into_the_documented_layout() {
    let inputs = Inputs::new(123_457);
    let out = tempfile::tempdir().unwrap();
    let image = out.path().join("image.eif");
    inputs.build(&image);
    let bytes = std::fs::read(&image).unwrap();
    let read = eif_build::read_image_file(&image).unwrap();
    let ramdisks: Vec<&[u8]> = read
        .sections
        .iter()
        .filter(|s| s.kind == SectionKind::Ramdisk)
        .map(|s| {
            let start = (s.offset + 12) as usize;
            &bytes[start..start + s.size as usize]
        })
        .collect();
    assert_eq!(ramdisks.len(), 2);
    assert_eq!(
        read.sections.iter().map(|s| s.kind).collect::<Vec<_>>(),
        [
            SectionKind::Kernel,
            SectionKind::Cmdline,
            SectionKind::Metadata,
            SectionKind::Ramdisk,
            SectionKind::Ramdisk
        ]
    );

    let listing = cpio(&["-t", "-v", "--numeric-uid-gid"], ramdisks[0], out.path());
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "{listing}");
    assert!(
        lines[0].starts_with("drwxr-xr-x   2 0        0 ") && lines[0].ends_with(" dev"),
        "{listing}"
    );
    assert!(
        lines[1].starts_with("-rwxr-xr-x   1 0        0 ") && lines[1].ends_with(" init"),
        "{listing}"
    );
    assert!(lines[2].ends_with(" nsm.ko"), "{listing}");
    assert!(listing.lines().all(|l| l.contains("1970")), "{listing}");

    let listing = cpio(&["-t", "-v", "--numeric-uid-gid"], ramdisks[1], out.path());
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cmd",
            "env",
            "rootfs",
            "rootfs/dev",
            "rootfs/etc",
            "rootfs/etc/enclave",
            "rootfs/etc/enclave/enclave.toml",
            "rootfs/opt",
            "rootfs/opt/model",
            "rootfs/opt/model/model.gguf",
            "rootfs/proc",
            "rootfs/run",
            "rootfs/sys",
            "rootfs/tmp",
            "rootfs/usr",
            "rootfs/usr/bin",
            "rootfs/usr/bin/enclave",
            "rootfs/var",
        ]
    );
    assert!(
        listing.lines().all(|l| l.contains(" 0        0 ")),
        "{listing}"
    );
    let model_line = listing.lines().find(|l| l.ends_with("model.gguf")).unwrap();
    assert!(
        model_line.starts_with("-r--r--r-- ") && model_line.contains(" 123457 "),
        "{listing}"
    );

    let unpacked = out.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    for ramdisk in &ramdisks {
        cpio(
            &["-i", "-d", "--no-absolute-filenames", "--quiet"],
            ramdisk,
            &unpacked,
        );
    }
    let read_back = |path: &str| std::fs::read(unpacked.join(path)).unwrap();
    assert_eq!(read_back("init"), std::fs::read(&inputs.init).unwrap());
    assert_eq!(read_back("nsm.ko"), std::fs::read(&inputs.nsm).unwrap());
    assert_eq!(
        read_back("rootfs/usr/bin/enclave"),
        std::fs::read(&inputs.binary).unwrap()
    );
    assert_eq!(
        read_back("rootfs/opt/model/model.gguf"),
        std::fs::read(&inputs.model).unwrap()
    );
    assert_eq!(
        String::from_utf8(read_back("cmd")).unwrap(),
        "/usr/bin/enclave\nserve\n--config\n/etc/enclave/enclave.toml\n"
    );
    assert_eq!(
        String::from_utf8(read_back("env")).unwrap(),
        "PATH=/usr/bin:/bin\n"
    );
    let config: toml::Table =
        toml::from_str(&String::from_utf8(read_back("rootfs/etc/enclave/enclave.toml")).unwrap())
            .unwrap();
    assert_eq!(config["model"].as_str(), Some("/opt/model/model.gguf"));
    assert_eq!(
        config["model_sha256"].as_str(),
        Some(inputs.model_sha256.as_str())
    );
    assert_eq!(config["listen"].as_str(), Some("vsock:5005"));
    assert_eq!(config["parent_listen"].as_str(), Some("vsock:5006"));
    assert_eq!(config["attester"].as_str(), Some("nsm"));
    let mode = |path: &str| {
        std::fs::metadata(unpacked.join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("rootfs/usr/bin/enclave"), 0o755);
}

/// The real model from the cache (as the enclave tests find it), with its published hash.
#[test]
fn builds_with_the_real_model() {
    let model = std::env::var_os("ATTESTED_MODEL_PATH").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        },
        std::path::PathBuf::from,
    );
    assert!(
        model.is_file(),
        "the test model is missing at {}: run scripts/fetch-model.sh (or set ATTESTED_MODEL_PATH)",
        model.display()
    );
    let mut inputs = Inputs::new(1);
    inputs.model = model.clone();
    // docs/protocol.md, section 1.
    inputs.model_sha256 =
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53".to_string();
    let out = tempfile::tempdir().unwrap();
    let image = out.path().join("smollm2.eif");
    let (output, stdout, stderr) = run(&mut inputs.build_command(&image));
    assert!(output.status.success(), "{stderr}");
    let built: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(measure(&image), built);
    let image_len = std::fs::metadata(&image).unwrap().len();
    let model_len = std::fs::metadata(&model).unwrap().len();
    assert!(image_len > model_len);
    // The operator is told 4x the image (nitro-cli's floor) at least.
    let floor = (4 * image_len).div_ceil(1 << 20);
    assert!(
        stderr.contains(&format!("--memory {floor} or more")),
        "{stderr}"
    );
}

/// Generates a P-384 key and a self-signed certificate with the `openssl` command.
fn openssl_identity(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join(format!("{name}-key.pem"));
    let cert = dir.join(format!("{name}-cert.pem"));
    let status = Command::new("openssl")
        .args(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out"])
        .arg(&key)
        .status()
        .expect("the openssl command is needed for this test");
    assert!(status.success());
    let status = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-x509",
            "-sha384",
            "-days",
            "2",
            "-subj",
            "/CN=eif-build test",
            "-key",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .status()
        .unwrap();
    assert!(status.success());
    (cert, key)
}

#[test]
fn signed_builds_are_reproducible_and_add_pcr8_only() {
    use sha2::Digest as _;
    let inputs = Inputs::new(50_000);
    let out = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_identity(out.path(), "signer");
    let unsigned = inputs.build(&out.path().join("unsigned.eif"));
    let signed_build = |name: &str| {
        let path = out.path().join(name);
        let mut command = inputs.build_command(&path);
        command
            .arg("--signing-certificate")
            .arg(&cert)
            .arg("--private-key")
            .arg(&key);
        (path.clone(), build_ok(&mut command))
    };
    let (first_path, first) = signed_build("signed-1.eif");
    let (second_path, second) = signed_build("signed-2.eif");
    assert_eq!(first, second);
    assert_eq!(
        std::fs::read(&first_path).unwrap(),
        std::fs::read(&second_path).unwrap(),
        "deterministic ECDSA: signed images are byte-identical too"
    );
    assert_eq!(measure(&first_path), first);
    assert_eq!(first["IsSigned"], true);
    assert_eq!(first["SignatureCheck"], true);
    for name in ["PCR0", "PCR1", "PCR2"] {
        assert_eq!(pcr(&first, name), pcr(&unsigned, name), "{name}");
    }
    // PCR8 = SHA-384(0^48 || SHA-384(certificate DER)), the DER from openssl itself.
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .unwrap()
        .stdout;
    let mut register = sha2::Sha384::new();
    register.update([0u8; 48]);
    register.update(sha2::Sha384::digest(&der));
    assert_eq!(pcr(&first, "PCR8"), hex::encode(register.finalize()));

    // A certificate that is not the key's.
    let (other_cert, _) = openssl_identity(out.path(), "other");
    let mut command = inputs.build_command(&out.path().join("mismatch.eif"));
    command
        .arg("--signing-certificate")
        .arg(&other_cert)
        .arg("--private-key")
        .arg(&key);
    let (output, _, stderr) = run(&mut command);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("does not hold the private key's public key"),
        "{stderr}"
    );
    // A certificate without its key is a usage error.
    let mut command = inputs.build_command(&out.path().join("half.eif"));
    command.arg("--signing-certificate").arg(&cert);
    let (output, _, stderr) = run(&mut command);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("--private-key"), "{stderr}");
    // Not a key at all.
    let mut command = inputs.build_command(&out.path().join("nokey.eif"));
    command
        .arg("--signing-certificate")
        .arg(&cert)
        .arg("--private-key")
        .arg(&cert);
    let (output, _, stderr) = run(&mut command);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("not a P-384 key"), "{stderr}");
}
