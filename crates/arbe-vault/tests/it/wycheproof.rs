//! The Wycheproof AES-GCM vectors (tests/data/wycheproof, Apache-2.0) through `aead::Cipher`,
//! the exact primitive the vault seals and opens with.

use arbe_vault::aead::{Cipher, NONCE_LEN};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    #[serde(rename = "testGroups")]
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    #[serde(rename = "keySize")]
    key_size: usize,
    #[serde(rename = "ivSize")]
    iv_size: usize,
    #[serde(rename = "tagSize")]
    tag_size: usize,
    tests: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    #[serde(rename = "tcId")]
    id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

/// Every vector with its group's (key, nonce, tag) sizes in bits.
fn vectors() -> Vec<((usize, usize, usize), Vector)> {
    let text = include_str!("../data/wycheproof/aes_gcm_test.json");
    let file: File = serde_json::from_str(text).expect("parse the Wycheproof file");
    file.groups
        .into_iter()
        .flat_map(|g| {
            let sizes = (g.key_size, g.iv_size, g.tag_size);
            g.tests.into_iter().map(move |t| (sizes, t))
        })
        .collect()
}

#[test]
fn wycheproof_vectors_for_the_vault_parameters_pass() {
    let (mut valid, mut invalid) = (0, 0);
    for (sizes, t) in vectors() {
        if sizes != (256, 96, 128) {
            continue;
        }
        let key: [u8; 32] = hex(&t.key).try_into().unwrap();
        let nonce: [u8; NONCE_LEN] = hex(&t.iv).try_into().unwrap();
        let cipher = Cipher::new(&key);
        let (aad, msg) = (hex(&t.aad), hex(&t.msg));
        let sealed = [hex(&t.ct), hex(&t.tag)].concat();
        let opened = cipher.open(&nonce, &aad, &sealed);
        match t.result.as_str() {
            "valid" => {
                valid += 1;
                assert_eq!(cipher.seal_with_nonce(&nonce, &aad, &msg), sealed, "tcId {} seal", t.id);
                assert_eq!(opened.expect("valid vector opens").as_slice(), msg, "tcId {} open", t.id);
            }
            "invalid" => {
                invalid += 1;
                assert!(opened.is_err(), "tcId {} must be rejected", t.id);
            }
            other => panic!("tcId {}: unexpected result {other}", t.id),
        }
    }
    // The file has 66 vectors for AES-256 with a 96-bit nonce: make sure none went missing.
    assert_eq!((valid, invalid), (39, 27));
}

#[test]
fn wycheproof_vectors_with_other_nonce_sizes_are_refused() {
    let mut refused = 0;
    for ((key_size, iv_size, _), t) in vectors() {
        if key_size != 256 || iv_size == 96 {
            continue;
        }
        let key: [u8; 32] = hex(&t.key).try_into().unwrap();
        let sealed = [hex(&t.ct), hex(&t.tag)].concat();
        assert!(Cipher::new(&key).open(&hex(&t.iv), &hex(&t.aad), &sealed).is_err(), "tcId {}", t.id);
        refused += 1;
    }
    assert!(refused > 0);
}

#[test]
fn flipping_any_bit_of_ciphertext_nonce_or_aad_is_rejected() {
    let cipher = Cipher::new(&[7; 32]);
    let aad = b"arbe.secret.v1 house version NAME".to_vec();
    let (nonce, sealed) = cipher.seal(&aad, b"sk-canary-value");
    assert!(cipher.open(&nonce, &aad, &sealed).is_ok());
    for bit in 0..sealed.len() * 8 {
        let mut bad = sealed.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(cipher.open(&nonce, &aad, &bad).is_err(), "ciphertext bit {bit}");
    }
    for bit in 0..nonce.len() * 8 {
        let mut bad = nonce;
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(cipher.open(&bad, &aad, &sealed).is_err(), "nonce bit {bit}");
    }
    for bit in 0..aad.len() * 8 {
        let mut bad = aad.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(cipher.open(&nonce, &bad, &sealed).is_err(), "aad bit {bit}");
    }
}
