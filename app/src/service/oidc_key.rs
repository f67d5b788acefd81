//! An IdP's signing key as openidconnect uses it: openidconnect's own `CoreJsonWebKey` for everything, except that
//! an RS256 signature by a 2048–4096-bit key with exponent 65537 (what nearly every IdP signs ID tokens with) is
//! verified by `ring` instead of the `rsa` crate.
//!
//! Why: profiled, the `rsa` crate's verification (num-bigint-dig's Montgomery loop) was 8% of Latchkey's CPU per
//! OIDC sign-in; `ring`'s (already linked for rustls) does the same check several times faster. Key selection
//! (`kid`, algorithm), the key's `use` and `alg` constraints, the claims and every other algorithm stay
//! openidconnect's. Keys outside those bounds (a 1024-bit modulus, an unusual exponent, over 4096 bits, `n` or `e`
//! in padded base64) go to the `rsa` crate as before, so every key verifies or is refused exactly as before: ring
//! only takes keys the `rsa` crate also accepts, and only the modulus and exponent that openidconnect's own
//! deserializer parsed.
use base64::Engine;
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeyUse, JwsSigningAlgorithm, SignatureVerificationError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A key of the IdP's JWKS.
#[derive(Clone, Debug)]
pub struct IdpKey {
    core: CoreJsonWebKey,
    /// The RSA modulus (no leading zeros) when the key is one `ring` verifies: RSA, exponent 65537, 2048–4096 bits.
    ring_modulus: Option<Vec<u8>>,
}

const E_65537: [u8; 3] = [1, 0, 1];

/// The members `ring_modulus` reads, from openidconnect's own serialization of the key it parsed.
#[derive(Deserialize)]
struct RsaMembers {
    kty: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// Unpadded base64url, as openidconnect decodes `n` and `e` (a padded value is no key to it, nor here).
fn b64url(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()
}

/// The modulus of a JWK when `ring` verifies with it (see `IdpKey::ring_modulus`).
fn ring_modulus(m: &RsaMembers) -> Option<Vec<u8>> {
    if m.kty.as_deref()? != "RSA" {
        return None;
    }
    let e: Vec<u8> = b64url(m.e.as_deref()?)?.into_iter().skip_while(|b| *b == 0).collect();
    if e != E_65537 {
        return None;
    }
    let n: Vec<u8> = b64url(m.n.as_deref()?)?.into_iter().skip_while(|b| *b == 0).collect();
    let first = *n.first()?;
    let bits = n.len() * 8 - first.leading_zeros() as usize;
    // The `rsa` crate's own bounds are 1024 (here: ring's 2048)…4096 bits.
    (2048..=4096).contains(&bits).then_some(n)
}

impl<'de> Deserialize<'de> for IdpKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // openidconnect's own deserializer decides what the key is (and what it refuses); ring then takes exactly
        // the modulus and exponent it parsed, read back from its serialization (once per JWKS fetch).
        let core = CoreJsonWebKey::deserialize(d)?;
        let members = serde_json::to_value(&core).ok().and_then(|v| serde_json::from_value::<RsaMembers>(v).ok());
        let ring_modulus = members.as_ref().and_then(ring_modulus);
        Ok(Self { core, ring_modulus })
    }
}

impl Serialize for IdpKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(s)
    }
}

/// openidconnect's own check (`check_key_compatibility`, not public): the key may sign, its type fits the
/// algorithm, and the algorithm is the key's own when it names one.
fn check_compatible(key: &CoreJsonWebKey, alg: &CoreJwsSigningAlgorithm) -> Result<(), SignatureVerificationError> {
    let refuse = |why: &str| Err(SignatureVerificationError::InvalidKey(why.to_string()));
    if key.key_use().is_some_and(|u| !u.allows_signature()) {
        return refuse("key usage not permitted for digital signatures");
    }
    if alg.key_type().as_ref() != Some(key.key_type()) {
        return refuse("key type does not match signature algorithm");
    }
    match key.signing_alg() {
        JsonWebKeyAlgorithm::Unspecified => Ok(()),
        JsonWebKeyAlgorithm::Unsupported => refuse("key algorithm is not a signing algorithm"),
        JsonWebKeyAlgorithm::Algorithm(own) if own == alg => Ok(()),
        JsonWebKeyAlgorithm::Algorithm(_) => refuse("incompatible key algorithm"),
    }
}

impl JsonWebKey for IdpKey {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.core.key_id()
    }

    fn key_type(&self) -> &<CoreJwsSigningAlgorithm as JwsSigningAlgorithm>::KeyType {
        self.core.key_type()
    }

    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.core.key_use()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.core.signing_alg()
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        Self { core: CoreJsonWebKey::new_symmetric(key), ring_modulus: None }
    }

    fn verify_signature(&self, alg: &CoreJwsSigningAlgorithm, message: &[u8], signature: &[u8]) -> Result<(), SignatureVerificationError> {
        match (alg, &self.ring_modulus) {
            (CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, Some(n)) => {
                check_compatible(&self.core, alg)?;
                ring::signature::RsaPublicKeyComponents { n: n.as_slice(), e: &E_65537[..] }
                    .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
                    .map_err(|_| SignatureVerificationError::CryptoError("bad signature".to_string()))
            }
            _ => self.core.verify_signature(alg, message, signature),
        }
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.core.hash_bytes(bytes, alg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openidconnect::core::CoreJsonWebKeyType;

    /// RS256 signatures made by OpenSSL (an independent signer), checked by `ring` through `IdpKey` and by the
    /// `rsa` crate through `CoreJsonWebKey`: both accept the genuine signature and refuse a changed message, a
    /// changed signature, a key whose `use` is encryption and a key whose `alg` is another algorithm.
    /// Keys ring does not take go to the `rsa` crate, whatever their members: exponent 3, over 4096 bits, an
    /// empty or zero modulus (no panic), not RSA; a JWK with a duplicate member is refused as openidconnect refuses it;
    /// a key set with a key openidconnect skips keeps its other keys.
    #[test]
    fn keys_outside_rings_bounds_fall_back_and_odd_ones_do_not_panic() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
        let sign = |rsa: &openssl::rsa::Rsa<openssl::pkey::Private>| {
            let pkey = openssl::pkey::PKey::from_rsa(rsa.clone()).unwrap();
            let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
            signer.update(b"m").unwrap();
            signer.sign_to_vec().unwrap()
        };
        let e3 = openssl::rsa::Rsa::generate_with_e(2048, &openssl::bn::BigNum::from_u32(3).unwrap()).unwrap();
        let big = openssl::rsa::Rsa::generate(4200).unwrap();
        for (rsa, why) in [(&e3, "exponent 3"), (&big, "4200 bits")] {
            let v = serde_json::json!({"kty": "RSA", "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec())});
            let ours: IdpKey = serde_json::from_value(v.clone()).unwrap();
            let core: CoreJsonWebKey = serde_json::from_value(v).unwrap();
            assert!(ours.ring_modulus.is_none(), "{why}: not ring's");
            let sig = sign(rsa);
            assert_eq!(ours.verify_signature(&alg, b"m", &sig).is_ok(), core.verify_signature(&alg, b"m", &sig).is_ok(), "{why}: as before");
        }
        for n in ["", "AA", "AAAA"] {
            let ours: IdpKey = serde_json::from_value(serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB"})).unwrap();
            assert!(ours.ring_modulus.is_none());
            assert!(ours.verify_signature(&alg, b"m", &[0u8; 256]).is_err(), "modulus {n:?} verifies nothing");
        }
        let ec: IdpKey = serde_json::from_value(serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"})).unwrap();
        assert!(ec.ring_modulus.is_none());
        let dup = r#"{"kty": "RSA", "n": "AQAB", "n": "AQAB", "e": "AQAB"}"#;
        assert_eq!(serde_json::from_str::<IdpKey>(dup).is_ok(), serde_json::from_str::<CoreJsonWebKey>(dup).is_ok(), "duplicate members: as before");
        // Through openidconnect's key set (which buffers each key and skips those it cannot read), as a JWKS arrives.
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let set = serde_json::json!({"keys": [{"kty": "RSA", "kid": "a", "n": b64(&rsa.n().to_vec()), "e": "AQAB"}, {"kty": 7}]});
        let ours: openidconnect::JsonWebKeySet<IdpKey> = serde_json::from_value(set.clone()).unwrap();
        let core: openidconnect::JsonWebKeySet<CoreJsonWebKey> = serde_json::from_value(set).unwrap();
        assert_eq!((ours.keys().len(), core.keys().len()), (1, 1));
        assert!(ours.keys()[0].ring_modulus.is_some(), "the RSA key of a JWKS is ring's");
        assert!(ours.keys()[0].verify_signature(&alg, b"m", &sign(&rsa)).is_ok());
    }

    #[test]
    fn ring_and_openidconnect_agree_on_rs256() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        for bits in [1024, 2048, 3072] {
            let rsa = openssl::rsa::Rsa::generate(bits).unwrap();
            let pkey = openssl::pkey::PKey::from_rsa(rsa.clone()).unwrap();
            let message = b"header.payload";
            let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
            signer.update(message).unwrap();
            let signature = signer.sign_to_vec().unwrap();
            let jwk = |extra: serde_json::Value| {
                let mut v = serde_json::json!({"kty": "RSA", "kid": "k1", "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec())});
                v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
                v
            };
            let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
            for (extra, valid) in [
                (serde_json::json!({}), true),
                (serde_json::json!({"use": "sig", "alg": "RS256"}), true),
                (serde_json::json!({"use": "enc"}), false),
                (serde_json::json!({"alg": "RS512"}), false),
            ] {
                let ours: IdpKey = serde_json::from_value(jwk(extra.clone())).unwrap();
                let core: CoreJsonWebKey = serde_json::from_value(jwk(extra.clone())).unwrap();
                assert_eq!(ours.ring_modulus.is_some(), bits >= 2048, "ring takes 2048 bits and more ({bits})");
                assert_eq!(ours.key_type(), &CoreJsonWebKeyType::RSA);
                let mut bad_sig = signature.clone();
                bad_sig[10] ^= 1;
                for (m, s, expect) in [(&message[..], &signature, valid), (&b"header.payloaD"[..], &signature, false), (&message[..], &bad_sig, false)] {
                    assert_eq!(ours.verify_signature(&alg, m, s).is_ok(), expect, "IdpKey, {bits} bits, {extra}");
                    assert_eq!(core.verify_signature(&alg, m, s).is_ok(), expect, "CoreJsonWebKey, {bits} bits, {extra}");
                }
            }
            // A padded modulus is no key to openidconnect, nor to ring.
            let padded = jwk(serde_json::json!({"n": format!("{}=", b64(&rsa.n().to_vec()))}));
            if let Ok(ours) = serde_json::from_value::<IdpKey>(padded.clone()) {
                assert!(ours.ring_modulus.is_none());
                let core: CoreJsonWebKey = serde_json::from_value(padded).unwrap();
                assert_eq!(ours.verify_signature(&alg, message, &signature).is_ok(), core.verify_signature(&alg, message, &signature).is_ok());
            }
            // The key round-trips as the JWK it came from (the metadata cache and logs see openidconnect's form).
            let ours: IdpKey = serde_json::from_value(jwk(serde_json::json!({}))).unwrap();
            assert_eq!(serde_json::to_value(&ours).unwrap()["n"], jwk(serde_json::json!({}))["n"]);
        }
    }
}
