//! The SEV-SNP certificate tables this launch's simulated doorbell delivered to the guest, kept
//! so that the table crosses the channel once: the guest's Evidence names the table by its
//! SHA-384 (`Evidence::certificates_sha384`, over the table's used bytes,
//! [`CertTable::sha384`]) instead of sending it back, and the bridge presents the table it
//! delivered under that name.
//!
//! The name is not a binding (the table arrives with the report, too late to be bound into its
//! REPORT_DATA, and a hostile host could rewrite the name as easily as the table): the
//! Verifier's checks are what make any table safe to take (the VCEK or VLEK chains to AMD's
//! root, carries the report's chip id and TCB, and verifies the report's signature). The name
//! keeps the honest host honest: it never presents a table other than the one the guest saw,
//! and says so when the two differ (a table altered on its way to the guest, or a guest naming
//! one this host never delivered).

use twi_attester::snp::certs::CertTable;

/// Distinct tables kept per launch: a host hands every extended guest request the same table,
/// so more than a few means the launch is misbehaving; the oldest is forgotten first.
const MAX_KEPT: usize = 4;

/// The tables delivered so far, newest last, each with its SHA-384.
#[derive(Debug, Default)]
pub struct DeliveredTables {
    tables: Vec<([u8; 48], Vec<u8>)>,
}

impl DeliveredTables {
    /// Keeps the table a doorbell answer is about to carry to the guest. A table the guest
    /// cannot use (malformed, or empty) is one it never names, so it is not kept.
    pub fn remember(&mut self, buffer: &[u8]) {
        let Ok(table) = CertTable::parse(buffer) else { return };
        if table.is_empty() {
            return;
        }
        let digest = table.sha384();
        self.tables.retain(|(kept, _)| *kept != digest);
        if self.tables.len() == MAX_KEPT {
            self.tables.remove(0);
        }
        self.tables.push((digest, table.used().to_vec()));
    }

    /// The delivered table whose SHA-384 is `digest`; `Err`: why there is none, for the user.
    pub fn named(&self, digest: &[u8]) -> Result<&[u8], String> {
        if let Some((_, table)) = self.tables.iter().find(|(kept, _)| kept[..] == *digest) {
            return Ok(table);
        }
        let delivered = match self.tables.as_slice() {
            [] => "it delivered none in this launch".to_string(),
            tables => format!(
                "it delivered {}",
                tables.iter().map(|(kept, _)| format!("sha384:{}", hex::encode(kept))).collect::<Vec<_>>().join(", ")
            ),
        };
        Err(format!(
            "the guest's evidence names certificate table sha384:{}, which this host did not deliver ({delivered}): \
             the table was altered on its way to the guest, or the guest names another; refusing to present a table the guest did not see",
            hex::encode(digest)
        ))
    }
}

#[cfg(test)]
mod tests {
    use twi_attester::snp::certs::{CertKind, encode};

    use super::*;

    fn table(vcek: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 4096];
        let len = encode(&[(CertKind::Vcek, vcek), (CertKind::Ask, b"ask")], &mut out).unwrap();
        out.truncate(len);
        out
    }

    #[test]
    fn finds_what_it_delivered_by_name_and_nothing_else() {
        let mut kept = DeliveredTables::default();
        let err = kept.named(&[0; 48]).unwrap_err();
        assert!(err.contains("it delivered none in this launch"), "{err}");
        // A padded buffer is kept as its used bytes, under the name the guest computes.
        let first = table(b"vcek one");
        let mut padded = first.clone();
        padded.resize(8192, 0);
        kept.remember(&padded);
        let name = CertTable::parse(&first).unwrap().sha384();
        assert_eq!(kept.named(&name), Ok(&first[..]));
        // Another table's name is refused, saying what was delivered.
        let other = CertTable::parse(&table(b"vcek two")).unwrap().sha384();
        let err = kept.named(&other).unwrap_err();
        assert!(err.contains(&format!("names certificate table sha384:{}", hex::encode(other))), "{err}");
        assert!(err.contains(&format!("it delivered sha384:{}", hex::encode(name))), "{err}");
        // Malformed and empty tables are never named, so never kept.
        kept.remember(&[0xA5; 100]);
        kept.remember(&[0; 4096]);
        assert_eq!(kept.tables.len(), 1);
    }

    #[test]
    fn keeps_a_few_distinct_tables_forgetting_the_oldest() {
        let mut kept = DeliveredTables::default();
        let tables: Vec<Vec<u8>> = (0..=MAX_KEPT as u8).map(|i| table(&[b'v', i])).collect();
        for t in &tables {
            kept.remember(t);
            kept.remember(t);
        }
        assert_eq!(kept.tables.len(), MAX_KEPT);
        let name = |t: &[u8]| CertTable::parse(t).unwrap().sha384();
        assert!(kept.named(&name(&tables[0])).is_err(), "the oldest is forgotten");
        for t in &tables[1..] {
            assert_eq!(kept.named(&name(t)), Ok(&t[..]));
        }
    }
}
