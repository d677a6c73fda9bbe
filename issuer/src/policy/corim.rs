//! Reference values as a CoRIM (draft-ietf-rats-corim-10): what `twi build` writes beside
//! `reference-values.json` (`reference-values.corim`) and what a policy's
//! `reference_values_corim` reads, so the two ends share one vocabulary.
//!
//! The document (§4.1, `tagged-unsigned-corim-map`, `#6.501`) holds one CoMID (`#6.506`) whose
//! `reference-triple-record`s each name a platform by its `class-map` vendor and model and
//! carry one launch measurement: `mkey` the evidence field, `digests` one SHA-384 entry,
//! algorithm 7 from the Named Information Hash Algorithm registry the draft's `digest` type
//! draws on. The vendor/model/mkey names are the IGVM launch-measurement profile's
//! (`tag:microsoft.com,2026:launch-measurement/v1`, in the `igvm` crate): `AMD`/`SEV-SNP`/
//! `MEASUREMENT`, `Intel`/`TDX`/`MRTD`. An SEV-SNP triple may add a second measurement, `POLICY`,
//! a `raw-value` as a `tagged-masked-raw-value` (`#6.563([value, mask])`, 8 bytes
//! little-endian): the guest policy's flag bits the image was built for. Every measurement of
//! one triple must match for the triple to match (the draft's appraisal, §9), so the launch
//! digest and the policy bits are admitted together, as the JSON reference entries pin them.
//! An SEV-SNP MEASUREMENT may carry a `name` (key 11): the TWI host profile the digest is for
//! (`linux-6.11`, ...), which the policy's entries and refusals then name.
//!
//! The image's SBOM digest, when the build measured one into its launch manifest (the
//! `twi.sbom` setting, issue 16): one more triple, for the environment `TWI`/`launch manifest`,
//! whose one measurement `twi.sbom` carries the SBOM's SHA-384 as its `digests`. The launch
//! digests cover the manifest, so this states what the measured manifest holds; a policy that
//! takes its reference values from the CoRIM names that SBOM on every entry, as `twi policy
//! add-image` does from the JSON. Readers that know only the platforms pass it over.
//!
//! Signed (§4.2): `#6.18(COSE_Sign1)` with `alg` ES384 (-35), `content-type`
//! `application/rim+cbor` and `corim-meta` (signer name) in the protected header; the payload
//! the document itself, or nil when it travels apart (the IGVM file's CoRIM signature header).
//! Draft-10 has no `#6.502` wrapper (earlier drafts did, until the working group removed
//! `#6.500`/`#6.502`), so `twi build` writes none; a CoRIM that has one is read all the same
//! (the `corim` crate peels it for interoperability; it lies outside what the signature covers). ES384 rather than RFC 9864's ESP384 (-51): every COSE library in use
//! (coset, pycose, go-cose) names it, and it fixes P-384 with SHA-384 in COSE just as well.
//!
//! Built and read with the `corim` crate (Microsoft's implementation of draft-10, the one the
//! `igvm` crate builds on), signed and verified with `p384`.

use corim::builder::{ComidBuilder, CorimBuilder};
use corim::types::comid::ComidTag;
use corim::types::common::{MeasuredElement, TagIdChoice};
use corim::types::corim::{CorimId, CorimMetaMap, CorimSignerMap};
use corim::types::environment::{ClassMap, EnvironmentMap};
use corim::types::measurement::{Digest, DigestAlg, MeasurementMap, MeasurementValuesMap, RawValueChoice};
use corim::types::signed::{CoseAlgorithm, SignedCorimBuilder, decode_signed_corim, validate_signed_corim_payload};
use corim::types::triples::ReferenceTriple;
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};

/// The file `twi build` writes.
pub const FILE_NAME: &str = "reference-values.corim";
/// Named Information Hash Algorithm registry: sha-384.
pub const NI_SHA384: i64 = 7;
/// COSE algorithm ES384 (ECDSA with SHA-384; P-384 here).
pub const COSE_ES384: i64 = -35;
/// COSE algorithm ESP384 (RFC 9864: ECDSA P-384 with SHA-384), read as ES384 is.
pub const COSE_ESP384: i64 = -51;

/// A platform a launch measurement is for, named as the launch-measurement profile does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaunchPlatform {
    /// AMD SEV-SNP: the report's MEASUREMENT.
    SevSnp,
    /// Intel TDX: the TD report's MRTD.
    Tdx,
}

impl LaunchPlatform {
    /// `(vendor, model, mkey)`.
    pub fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::SevSnp => ("AMD", "SEV-SNP", "MEASUREMENT"),
            Self::Tdx => ("Intel", "TDX", "MRTD"),
        }
    }

    fn of(vendor: &str, model: &str) -> Option<Self> {
        [Self::SevSnp, Self::Tdx].into_iter().find(|p| {
            let (v, m, _) = p.names();
            v == vendor && m == model
        })
    }
}

/// One launch measurement: the platform, the SHA-384 digest, and for SEV-SNP optionally the
/// guest policy's bits that must be `required` under `mask`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchValue {
    pub platform: LaunchPlatform,
    pub digest: [u8; 48],
    pub policy: Option<PolicyBits>,
    /// SEV-SNP: the TWI host profile the digest is for (`twi build --host-profile`), carried
    /// as the MEASUREMENT's `name` (measurement-values-map key 11).
    pub host_profile: Option<String>,
}

/// Guest policy bits: admitted iff `policy & mask == required`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyBits {
    pub mask: u64,
    pub required: u64,
}

/// The environment and measurement key of the SBOM triple.
const SBOM_CLASS: (&str, &str) = ("TWI", "launch manifest");
pub const SBOM_MKEY: &str = "twi.sbom";

/// What a signed CoRIM states that TWI appraises: the launch measurements, and the SBOM digest
/// the launch manifest carries, if it states one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorimValues {
    pub launch: Vec<LaunchValue>,
    pub sbom: Option<[u8; 48]>,
}

/// Why a CoRIM could not be made or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CorimError(pub String);

fn fail(what: &str, e: impl std::fmt::Display) -> CorimError {
    CorimError(format!("{what}: {e}"))
}

fn environment(vendor: &str, model: &str) -> EnvironmentMap {
    let class =
        ClassMap { class_id: None, vendor: Some(vendor.into()), model: Some(model.into()), layer: None, index: None };
    EnvironmentMap { class: Some(class), instance: None, group: None }
}

/// A measurement `mkey` whose value is one SHA-384 digest.
fn digest_measurement(mkey: &str, digest: &[u8; 48]) -> MeasurementMap {
    MeasurementMap {
        mkey: Some(MeasuredElement::Text(mkey.into())),
        mval: MeasurementValuesMap {
            digests: Some(vec![Digest::new(NI_SHA384, digest.to_vec())]),
            ..MeasurementValuesMap::default()
        },
        authorized_by: None,
    }
}

fn triple(value: &LaunchValue) -> ReferenceTriple {
    let (vendor, model, mkey) = value.platform.names();
    let mut digest = digest_measurement(mkey, &value.digest);
    digest.mval.name.clone_from(&value.host_profile);
    let mut measurements = vec![digest];
    if let Some(bits) = value.policy {
        let raw = RawValueChoice::Masked {
            value: (bits.required & bits.mask).to_le_bytes().to_vec(),
            mask: bits.mask.to_le_bytes().to_vec(),
        };
        measurements.push(MeasurementMap {
            mkey: Some(MeasuredElement::Text("POLICY".into())),
            mval: MeasurementValuesMap { raw_value: Some(raw), ..MeasurementValuesMap::default() },
            authorized_by: None,
        });
    }
    ReferenceTriple::new(environment(vendor, model), measurements)
}

/// The unsigned document (`#6.501(corim-map)`): CoRIM `id`, one CoMID tagged `tag_id` with one
/// reference triple per value, and the SBOM triple when `sbom` is given; with `validity`
/// (not-before, not-after: Unix seconds), its `rim-validity` (draft-ietf-rats-corim §7.3), past
/// which readers refuse it.
pub fn document(
    id: &str,
    tag_id: &str,
    values: &[LaunchValue],
    sbom: Option<&[u8; 48]>,
    validity: Option<(i64, i64)>,
) -> Result<Vec<u8>, CorimError> {
    if values.is_empty() {
        return Err(CorimError("no launch measurement to state".into()));
    }
    let builder = values
        .iter()
        .fold(ComidBuilder::new(TagIdChoice::Text(tag_id.into())), |b, v| b.add_reference_triple(triple(v)));
    let builder = match sbom {
        Some(digest) => builder.add_reference_triple(ReferenceTriple::new(
            environment(SBOM_CLASS.0, SBOM_CLASS.1),
            vec![digest_measurement(SBOM_MKEY, digest)],
        )),
        None => builder,
    };
    let comid = builder.build().map_err(|e| fail("the CoMID", e))?;
    let builder = CorimBuilder::new(CorimId::Text(id.into()));
    let builder = match validity {
        Some((not_before, not_after)) => {
            builder.set_validity(Some(not_before), not_after).map_err(|e| fail("the validity", e))?
        }
        None => builder,
    };
    builder.add_comid_tag(comid).map_err(|e| fail("the CoRIM", e))?.build_bytes().map_err(|e| fail("the CoRIM", e))
}

/// `document` signed with `key` (ES384) by `signer`: `#6.18(COSE_Sign1)`, the document as its
/// payload, or with `detached` a nil payload (the signature covers the document all the same).
pub fn sign(document: &[u8], key: &SigningKey, signer: &str, detached: bool) -> Result<Vec<u8>, CorimError> {
    let meta = CorimMetaMap {
        signer: CorimSignerMap { signer_name: signer.into(), signer_uri: None },
        signature_validity: None,
    };
    let mut builder = SignedCorimBuilder::new(CoseAlgorithm::Es384, document.to_vec()).set_corim_meta(meta);
    let tbs = builder.to_be_signed(&[]).map_err(|e| fail("the COSE Sig_structure", e))?;
    let signature: Signature = key.sign(&tbs);
    let signature = signature.to_bytes().to_vec();
    let signed = if detached {
        builder.build_detached_with_signature(signature)
    } else {
        builder.build_with_signature(signature)
    };
    signed.map_err(|e| fail("the signed CoRIM", e))
}

/// A signed CoRIM's launch measurements, once its ES384 signature verifies under `key` and its
/// document is well formed (draft-10 structure, validity period). Refuses one that states no
/// launch measurement TWI appraises, or states one malformed.
pub fn read_signed(bytes: &[u8], key: &VerifyingKey) -> Result<CorimValues, CorimError> {
    let signed = decode_signed_corim(bytes).map_err(|e| fail("not a signed CoRIM (#6.18 COSE_Sign1)", e))?;
    let alg = signed.protected.alg.to_i64();
    if alg != COSE_ES384 && alg != COSE_ESP384 {
        return Err(CorimError(format!(
            "signed with COSE algorithm {alg}; only ES384 (-35) and ESP384 (-51) are read"
        )));
    }
    if signed.payload.is_none() {
        return Err(CorimError("its payload is detached: give the CoRIM with its document inside".into()));
    }
    let tbs = signed.to_be_signed(&[]).map_err(|e| fail("the COSE Sig_structure", e))?;
    let signature = Signature::from_slice(&signed.signature)
        .map_err(|_| CorimError("the signature is not an ES384 signature (96 bytes r || s)".into()))?;
    key.verify(&tbs, &signature).map_err(|_| {
        CorimError("the signature does not verify under corim_key: the file was changed after signing, or signed by another key".into())
    })?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let validated = validate_signed_corim_payload(&signed, i64::try_from(now).unwrap_or(i64::MAX))
        .map_err(|e| fail("the signed document", e))?;
    Ok(CorimValues { launch: launch_values(&validated.comids)?, sbom: sbom_value(&validated.comids)? })
}

/// The SBOM digest of the `TWI`/`launch manifest` triple, if there is one; more than one, or
/// one without a single SHA-384 `twi.sbom` digest, is refused.
pub fn sbom_value(comids: &[ComidTag]) -> Result<Option<[u8; 48]>, CorimError> {
    let at = "the TWI launch manifest's reference triple";
    let mut found = None;
    for triple in comids.iter().flat_map(|c| c.triples.reference_triples.iter().flatten()) {
        let ReferenceTriple(environment, measurements) = triple;
        let class = environment.class.as_ref();
        if class.and_then(|c| Some((c.vendor.as_deref()?, c.model.as_deref()?))) != Some(SBOM_CLASS) {
            continue;
        }
        let [m] = measurements.as_slice() else {
            return Err(CorimError(format!("{at}: not exactly one measurement ({SBOM_MKEY})")));
        };
        let sha384 = m.mval.digests.iter().flatten().find(|d| *d.alg() == DigestAlg::Int(NI_SHA384));
        let digest = sha384.filter(|_| mkey_is(m, SBOM_MKEY)).and_then(|d| <[u8; 48]>::try_from(d.value()).ok());
        let digest = digest.ok_or_else(|| CorimError(format!("{at}: no 48-byte sha-384 (7) digest of {SBOM_MKEY}")))?;
        if found.replace(digest).is_some() {
            return Err(CorimError(format!("{at}: stated twice")));
        }
    }
    Ok(found)
}

/// The launch measurements in the CoMIDs' reference triples for the platforms TWI appraises.
/// Other environments are passed over; one of ours that is malformed is refused.
pub fn launch_values(comids: &[ComidTag]) -> Result<Vec<LaunchValue>, CorimError> {
    let mut values = Vec::new();
    for triple in comids.iter().flat_map(|c| c.triples.reference_triples.iter().flatten()) {
        let ReferenceTriple(environment, measurements) = triple;
        let class = environment.class.as_ref();
        let names = class.and_then(|c| Some((c.vendor.as_deref()?, c.model.as_deref()?)));
        let Some(platform) = names.and_then(|(v, m)| LaunchPlatform::of(v, m)) else { continue };
        values.push(launch_value(platform, measurements)?);
    }
    if values.is_empty() {
        return Err(CorimError(
            "no launch measurement in it: no reference triple for AMD SEV-SNP (MEASUREMENT) or Intel TDX (MRTD)".into(),
        ));
    }
    Ok(values)
}

fn mkey_is(m: &MeasurementMap, name: &str) -> bool {
    matches!(&m.mkey, Some(MeasuredElement::Text(t)) if t == name)
}

fn launch_value(platform: LaunchPlatform, measurements: &[MeasurementMap]) -> Result<LaunchValue, CorimError> {
    let (vendor, model, mkey) = platform.names();
    let at = format!("the {vendor} {model} reference triple");
    let mut digest = None;
    let mut policy = None;
    let mut host_profile = None;
    for m in measurements {
        if mkey_is(m, mkey) {
            host_profile = m.mval.name.clone().filter(|_| platform == LaunchPlatform::SevSnp);
            let sha384 = m.mval.digests.iter().flatten().find(|d| *d.alg() == DigestAlg::Int(NI_SHA384));
            let bytes = sha384.ok_or_else(|| CorimError(format!("{at}: {mkey} has no sha-384 (7) digest")))?.value();
            let bytes = <[u8; 48]>::try_from(bytes)
                .map_err(|_| CorimError(format!("{at}: the {mkey} digest is {} bytes, not 48", bytes.len())))?;
            digest = Some(bytes);
        } else if platform == LaunchPlatform::SevSnp && mkey_is(m, "POLICY") {
            policy = Some(policy_bits(&m.mval.raw_value).ok_or_else(|| {
                CorimError(format!("{at}: POLICY is not a masked raw value of 8 bytes (#6.563([value, mask]))"))
            })?);
        } else {
            return Err(CorimError(format!("{at}: a measurement other than {mkey} or POLICY, which TWI cannot match")));
        }
    }
    let digest = digest.ok_or_else(|| CorimError(format!("{at} has no {mkey} measurement")))?;
    Ok(LaunchValue { platform, digest, policy, host_profile })
}

fn policy_bits(raw: &Option<RawValueChoice>) -> Option<PolicyBits> {
    let Some(RawValueChoice::Masked { value, mask }) = raw else { return None };
    let value = u64::from_le_bytes(value.as_slice().try_into().ok()?);
    let mask = u64::from_le_bytes(mask.as_slice().try_into().ok()?);
    Some(PolicyBits { mask, required: value & mask })
}
