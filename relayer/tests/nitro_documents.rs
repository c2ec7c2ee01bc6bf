//! The real AWS Nitro documents of `shared/vectors/nitro/` against `NitroRegistrar` on a real
//! anvil chain (deployed by `contracts/script/deploy.sh`, trusting the AWS Nitro root G1), each
//! at its own time: the hints from `nitro-hints` make every document verify on-chain; the
//! intermediates are cached one transaction each (the cold path `relayer register` takes) and
//! the document then verifies from the cache; a tampered document reverts. Gas of every step is
//! printed (docs/benchmarks.md).

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::providers::Provider;
use attestation_verifier::parse_document;
use relayer::contracts::INitroRegistrar;
use relayer::register::nitro_hint_calldata;
use testkit::chain::{Account, mined};
use testkit::{Anvil, DeploySettings, Deployment};

/// `(file name, bytes, timestamp in seconds)` of every real document, oldest first.
fn documents() -> Vec<(String, Vec<u8>, u64)> {
    let mut documents: Vec<(String, Vec<u8>, u64)> =
        std::fs::read_dir(testkit::nitro_vectors_dir())
            .expect("shared/vectors/nitro beside the repository")
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "cbor")
            })
            .map(|path| {
                let bytes = std::fs::read(&path).unwrap();
                let millis = parse_document(&bytes).unwrap().timestamp().as_millis();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, bytes, millis / 1000)
            })
            .collect();
    documents.sort_by_key(|(_, _, seconds)| *seconds);
    assert!(documents.len() >= 8, "expected the 8 real documents");
    documents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_documents_verify_on_chain_at_their_own_time() {
    let documents = documents();
    // The chain starts just before the oldest document; blocks then follow the documents' times.
    let anvil = Anvil::start_at(documents[0].2 - 600);
    let deployment = Deployment::deploy(&anvil, &DeploySettings::default());
    let account = Account::deployer(&anvil);
    let provider = account.provider.clone();
    let registrar =
        INitroRegistrar::new(Address::from(deployment.nitro_registrar), provider.clone());
    assert!(registrar.isAwsRoot().call().await.unwrap());

    for (name, bytes, seconds) in &documents {
        provider
            .raw_request::<_, serde_json::Value>("evm_setNextBlockTimestamp".into(), (seconds,))
            .await
            .expect("evm_setNextBlockTimestamp");
        provider
            .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
            .await
            .expect("evm_mine");
        let parsed = parse_document(bytes).unwrap();
        let hints = nitro_hint_calldata(bytes).expect("hints for a real document");

        let cold_call = registrar.verifyAttestation(bytes.clone().into(), hints.clone());
        let attestation = cold_call
            .call()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let cold_gas = cold_call.estimate_gas().await.unwrap();
        assert_eq!(
            attestation.timestampMs,
            parsed.timestamp().as_millis(),
            "{name}"
        );
        let mut pcrs = Vec::new();
        for index in 0..3 {
            pcrs.extend_from_slice(parsed.pcr(index).unwrap());
        }
        assert_eq!(attestation.imageId, keccak256(&pcrs), "{name}");
        assert_eq!(
            attestation.debugMode,
            (0..3).all(|index| parsed.pcr(index).unwrap().iter().all(|byte| *byte == 0)),
            "{name}"
        );
        assert_eq!(
            attestation.userData.as_ref(),
            parsed.user_data().unwrap_or_default(),
            "{name}"
        );

        // The cold path in bounded transactions: each uncached intermediate, then the rest.
        let cabundle = parsed.cabundle();
        let mut cache_gas = Vec::new();
        for index in 1..cabundle.len() {
            let hash = keccak256(&cabundle[index]);
            if registrar.cachedCertificate(hash).call().await.unwrap().hash != B256::ZERO {
                continue;
            }
            let receipt = mined(
                registrar
                    .cacheCertificate(
                        Bytes::copy_from_slice(&cabundle[index]),
                        keccak256(&cabundle[index - 1]),
                        hints[index - 1].clone(),
                    )
                    .send()
                    .await,
                "cacheCertificate",
            )
            .await;
            cache_gas.push(receipt.gas_used);
        }
        let warm_call = registrar.verifyAttestation(bytes.clone().into(), hints.clone());
        warm_call
            .call()
            .await
            .unwrap_or_else(|e| panic!("{name} (cached): {e}"));
        let warm_gas = warm_call.estimate_gas().await.unwrap();
        assert!(warm_gas < cold_gas, "{name}: the cache saves gas");
        eprintln!(
            "{name}: verify cold {cold_gas} gas in one call; cache txs {cache_gas:?}; verify warm {warm_gas}"
        );

        // Tampering with the signature, the payload or the leaf reverts.
        for offset in [bytes.len() - 5, bytes.len() / 3, bytes.len() / 2] {
            let mut tampered = bytes.clone();
            tampered[offset] ^= 0x01;
            assert!(
                registrar
                    .verifyAttestation(tampered.into(), hints.clone())
                    .call()
                    .await
                    .is_err(),
                "{name}: a byte flipped at {offset} still verifies"
            );
        }
    }
}
