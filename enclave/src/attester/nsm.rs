//! The production attester: the Nitro Secure Module behind `/dev/nsm`, through the
//! `aws-nitro-enclaves-nsm-api` driver (its ioctl is the only unsafe code, and it lives there).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aws_nitro_enclaves_nsm_api::api::{Request, Response};
use serde_bytes::ByteBuf;

use super::{AttestationRequest, Attester, AttesterError, AttesterKind, check_document_matches};

/// Sends one request to an NSM and returns its response. The real device is [`NsmDriver`];
/// tests inject fakes to exercise the response handling without Nitro hardware.
pub(crate) trait NsmDevice: Send {
    fn process(&mut self, request: Request) -> Response;
}

/// `/dev/nsm`, opened once; the descriptor closes when this is dropped.
struct NsmDriver {
    device: File,
}

impl NsmDevice for NsmDriver {
    fn process(&mut self, request: Request) -> Response {
        aws_nitro_enclaves_nsm_api::driver::nsm_process_request(self.device.as_raw_fd(), request)
    }
}

/// Attestation documents from the Nitro Secure Module.
pub struct NsmAttester {
    path: PathBuf,
    // One request at a time: the NSM driver serialises them anyway, and a shared descriptor
    // must not see interleaved ioctls from our side.
    device: Mutex<Box<dyn NsmDevice>>,
}

impl std::fmt::Debug for NsmAttester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NsmAttester")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl NsmAttester {
    /// Where the Nitro Secure Module device lives inside an enclave.
    pub const DEVICE_PATH: &'static str = "/dev/nsm";

    /// Opens `/dev/nsm`.
    ///
    /// # Errors
    /// [`AttesterError::DeviceUnavailable`] outside a Nitro enclave.
    pub fn open() -> Result<Self, AttesterError> {
        Self::open_at(Path::new(Self::DEVICE_PATH))
    }

    /// Opens the NSM device at `path` (for images that mount it elsewhere).
    ///
    /// # Errors
    /// [`AttesterError::DeviceUnavailable`] when it cannot be opened read-write.
    pub fn open_at(path: &Path) -> Result<Self, AttesterError> {
        let device = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| AttesterError::DeviceUnavailable {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self::with_device(path, Box::new(NsmDriver { device })))
    }

    pub(crate) fn with_device(path: &Path, device: Box<dyn NsmDevice>) -> Self {
        Self {
            path: path.to_owned(),
            device: Mutex::new(device),
        }
    }
}

/// The NSM request for `request` (fields copied as they are; absent stays absent).
fn nsm_request(request: &AttestationRequest) -> Request {
    Request::Attestation {
        user_data: request.user_data.clone().map(ByteBuf::from),
        nonce: request.nonce.clone().map(ByteBuf::from),
        public_key: request.public_key.clone().map(ByteBuf::from),
    }
}

/// The document in `response`, checked to parse and to carry the requested fields.
fn document_from_response(
    response: Response,
    request: &AttestationRequest,
) -> Result<Vec<u8>, AttesterError> {
    let document = match response {
        Response::Attestation { document } => document,
        Response::Error(code) => {
            return Err(AttesterError::NsmRejected {
                code: format!("{code:?}"),
            });
        }
        other => {
            return Err(AttesterError::UnexpectedNsmResponse {
                response: summarise(&other),
            });
        }
    };
    check_document_matches(&document, request)?;
    Ok(document)
}

/// The response's variant name, without its (possibly large) contents.
fn summarise(response: &Response) -> String {
    let debug = format!("{response:?}");
    let name_end = debug
        .find(|c: char| !c.is_alphanumeric())
        .unwrap_or(debug.len());
    debug[..name_end].to_owned()
}

impl Attester for NsmAttester {
    fn attest(&self, request: &AttestationRequest) -> Result<Vec<u8>, AttesterError> {
        request.check_limits()?;
        let response = self
            .device
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .process(nsm_request(request));
        document_from_response(response, request)
    }

    fn kind(&self) -> AttesterKind {
        AttesterKind::Nsm
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aws_nitro_enclaves_nsm_api::api::ErrorCode;

    use super::*;
    use crate::attester::{DevAttester, DevCa, DevMeasurements};

    /// Answers like an NSM would, with a document from the development attester (which emits
    /// the NSM's format), and records what it was asked.
    struct FakeNsm {
        attester: Arc<DevAttester>,
        answer: fn(&DevAttester, &AttestationRequest) -> Response,
        seen: Arc<Mutex<Vec<AttestationRequest>>>,
    }

    impl NsmDevice for FakeNsm {
        fn process(&mut self, request: Request) -> Response {
            let Request::Attestation {
                user_data,
                nonce,
                public_key,
            } = request
            else {
                return Response::Error(ErrorCode::InvalidOperation);
            };
            let request = AttestationRequest {
                public_key: public_key.map(ByteBuf::into_vec),
                user_data: user_data.map(ByteBuf::into_vec),
                nonce: nonce.map(ByteBuf::into_vec),
            };
            self.seen.lock().expect("lock").push(request.clone());
            (self.answer)(&self.attester, &request)
        }
    }

    fn dev_attester() -> (tempdir::TempDir, Arc<DevAttester>) {
        let directory = tempdir::TempDir::new();
        let ca = DevCa::load_or_create(directory.path()).expect("dev CA");
        let attester =
            DevAttester::new(ca, DevMeasurements::new([3u8; 48], &[4u8; 32])).expect("attester");
        (directory, Arc::new(attester))
    }

    fn nsm_with(
        answer: fn(&DevAttester, &AttestationRequest) -> Response,
    ) -> (
        tempdir::TempDir,
        NsmAttester,
        Arc<Mutex<Vec<AttestationRequest>>>,
    ) {
        let (directory, attester) = dev_attester();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fake = FakeNsm {
            attester,
            answer,
            seen: Arc::clone(&seen),
        };
        let nsm = NsmAttester::with_device(Path::new("/fake/nsm"), Box::new(fake));
        (directory, nsm, seen)
    }

    fn request() -> AttestationRequest {
        AttestationRequest {
            public_key: Some(vec![4u8; 65]),
            user_data: Some(vec![1u8; 65]),
            nonce: Some(b"challenge".to_vec()),
        }
    }

    #[test]
    fn request_fields_are_passed_through_unchanged() {
        let Request::Attestation {
            user_data,
            nonce,
            public_key,
        } = nsm_request(&request())
        else {
            panic!("not an attestation request");
        };
        assert_eq!(user_data.map(ByteBuf::into_vec), Some(vec![1u8; 65]));
        assert_eq!(nonce.map(ByteBuf::into_vec), Some(b"challenge".to_vec()));
        assert_eq!(public_key.map(ByteBuf::into_vec), Some(vec![4u8; 65]));
        let Request::Attestation {
            user_data,
            nonce,
            public_key,
        } = nsm_request(&AttestationRequest::default())
        else {
            panic!("not an attestation request");
        };
        assert!(user_data.is_none() && nonce.is_none() && public_key.is_none());
    }

    #[test]
    fn a_matching_document_is_returned() {
        let (_directory, nsm, seen) = nsm_with(|attester, request| Response::Attestation {
            document: attester.attest(request).expect("document"),
        });
        let document = nsm.attest(&request()).expect("document");
        let parsed = attestation_verifier::parse_document(&document).expect("parses");
        assert_eq!(parsed.nonce(), Some(&b"challenge"[..]));
        assert_eq!(seen.lock().expect("lock").as_slice(), &[request()]);
        assert_eq!(nsm.kind(), AttesterKind::Nsm);
    }

    #[test]
    fn a_document_for_another_request_is_refused() {
        let (_directory, nsm, _) = nsm_with(|attester, request| {
            let mut other = request.clone();
            other.nonce = Some(b"someone else's".to_vec());
            Response::Attestation {
                document: attester.attest(&other).expect("document"),
            }
        });
        assert!(matches!(
            nsm.attest(&request()),
            Err(AttesterError::DocumentMismatch { field: "nonce" })
        ));
    }

    #[test]
    fn nsm_errors_and_odd_responses_are_reported() {
        let (_directory, nsm, _) = nsm_with(|_, _| Response::Error(ErrorCode::InternalError));
        match nsm.attest(&request()) {
            Err(AttesterError::NsmRejected { code }) => assert_eq!(code, "InternalError"),
            other => panic!("unexpected {other:?}"),
        }
        let (_directory, nsm, _) = nsm_with(|_, _| Response::GetRandom {
            random: vec![0; 32],
        });
        match nsm.attest(&request()) {
            Err(AttesterError::UnexpectedNsmResponse { response }) => {
                assert_eq!(response, "GetRandom");
            }
            other => panic!("unexpected {other:?}"),
        }
        let (_directory, nsm, _) = nsm_with(|_, _| Response::Attestation {
            document: b"not cbor".to_vec(),
        });
        assert!(matches!(
            nsm.attest(&request()),
            Err(AttesterError::MalformedDocument(_))
        ));
    }

    #[test]
    fn oversized_requests_never_reach_the_device() {
        let (_directory, nsm, seen) = nsm_with(|_, _| Response::Error(ErrorCode::InternalError));
        let oversized = AttestationRequest {
            nonce: Some(vec![0; 513]),
            ..request()
        };
        assert!(matches!(
            nsm.attest(&oversized),
            Err(AttesterError::FieldTooLarge { field: "nonce", .. })
        ));
        assert!(seen.lock().expect("lock").is_empty());
    }

    #[test]
    fn a_missing_device_is_a_clear_error() {
        let path = Path::new("/nonexistent/attested-inference/nsm");
        match NsmAttester::open_at(path) {
            Err(error @ AttesterError::DeviceUnavailable { .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains("/nonexistent/attested-inference/nsm"),
                    "{message}"
                );
                assert!(message.contains("development attester"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_file_that_is_not_the_nsm_fails_through_the_real_driver() {
        // The real driver path: the ioctl on an ordinary file fails (ENOTTY), which the
        // driver reports as an NSM error; nothing is returned as a document.
        let directory = tempdir::TempDir::new();
        let path = directory.path().join("not-nsm");
        std::fs::write(&path, b"").expect("write");
        let nsm = NsmAttester::open_at(&path).expect("opens an ordinary file");
        assert!(matches!(
            nsm.attest(&request()),
            Err(AttesterError::NsmRejected { .. })
        ));
    }

    /// A private temporary directory removed on drop (no extra crate for it).
    mod tempdir {
        use std::path::{Path, PathBuf};

        pub(crate) struct TempDir(PathBuf);

        impl TempDir {
            pub(crate) fn new() -> Self {
                let mut random = [0u8; 8];
                aws_lc_rs::rand::fill(&mut random).expect("random");
                let path =
                    std::env::temp_dir().join(format!("enclave-test-{}", hex::encode(random)));
                std::fs::create_dir_all(&path).expect("create temp dir");
                Self(path)
            }
            pub(crate) fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
