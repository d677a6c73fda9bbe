//! What sits under the guest, as the bridge needs it: the simulated TEE firmware (`twi-sim`:
//! the PSP of an SEV-SNP guest, the TDX module and quoting enclave of a TD), which answers the
//! runtime's doorbells over the channel, or real hardware, where the guest rings the real
//! doorbell and the host only supplies the endorsements and collateral a verifier needs
//! (`crate::hardware`).

use twi_proto::msg::{DoorbellKind, DoorbellRequest, DoorbellResponse, Platform};
use twi_sim::SimError;
use twi_sim::snp::{SimLaunch, SimPsp};
use twi_sim::svsm::SimSvsm;
use twi_sim::tdx::SimTdx;
use twi_verifier::tdx::Collateral;

/// Why the firmware cannot serve a request.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    /// Real hardware: the guest must ring the real doorbell, never the host.
    #[error("a guest on real hardware asked for the simulated doorbell")]
    NotSimulated,
    /// The simulated firmware of the other platform was asked.
    #[error("{0}")]
    OtherPlatform(&'static str),
    /// The simulator itself failed (its state, its RNG).
    #[error(transparent)]
    Simulator(#[from] SimError),
    /// Endorsements or collateral the host cannot supply, with what to do about it.
    #[error("{0}")]
    Unavailable(String),
}

/// The VCEK and its chain for an SEV-SNP report the guest sent without a certificate table.
#[derive(Debug, Clone)]
pub struct Endorsements {
    /// DER certificates, leaf first.
    pub certificates: Vec<Vec<u8>>,
    /// Where they came from, for the user.
    pub source: String,
}

/// The guest's TEE, from the host's side.
pub trait Firmware {
    /// The platform the guest must report in its Hello and its evidence.
    fn platform(&self) -> Platform;
    /// The `--platform` value of this launch, for messages.
    fn option(&self) -> &'static str;
    /// A simulated doorbell: the firmware's answer to the exact request bytes.
    fn doorbell(&mut self, request: &DoorbellRequest) -> Result<DoorbellResponse, FirmwareError>;
    /// SEV-SNP: the host's VCEK and chain for `report` (the guest forwarded no certificate table).
    fn endorsements(&mut self, report: &[u8]) -> Result<Endorsements, FirmwareError>;
    /// TDX: collateral for `quote` the Verifier should judge its TCB with, when the host
    /// fetches it per quote (`None`: the issuer has what it needs).
    fn collateral(&mut self, quote: &[u8]) -> Result<Option<Collateral>, FirmwareError>;
    /// SEV-SNP: the endorsements (DER, leaf first) of the certificate table this host will
    /// deliver with the launch's reports, known before the guest asks, for the Verifier to
    /// check while the guest boots; `None` when the host does not know them ahead.
    fn endorsements_ahead(&mut self) -> Option<Vec<Vec<u8>>> {
        None
    }
}

/// A firmware behind a reference or a box is that firmware.
macro_rules! forward_firmware {
    ($($wrapper:ty),*) => {$(
        impl<F: Firmware + ?Sized> Firmware for $wrapper {
            fn platform(&self) -> Platform {
                (**self).platform()
            }
            fn option(&self) -> &'static str {
                (**self).option()
            }
            fn doorbell(&mut self, request: &DoorbellRequest) -> Result<DoorbellResponse, FirmwareError> {
                (**self).doorbell(request)
            }
            fn endorsements(&mut self, report: &[u8]) -> Result<Endorsements, FirmwareError> {
                (**self).endorsements(report)
            }
            fn collateral(&mut self, quote: &[u8]) -> Result<Option<Collateral>, FirmwareError> {
                (**self).collateral(quote)
            }
            fn endorsements_ahead(&mut self) -> Option<Vec<Vec<u8>>> {
                (**self).endorsements_ahead()
            }
        }
    )*};
}
forward_firmware!(&mut F, Box<F>);

/// `--platform sim`: one launch on the simulated PSP of one simulated chip.
#[derive(Debug)]
pub struct SimSnp<'a> {
    pub psp: &'a SimPsp,
    /// This launch's VMPCK0 and guest-message sequence numbers.
    pub launch: SimLaunch,
}

impl Firmware for SimSnp<'_> {
    fn platform(&self) -> Platform {
        Platform::SimSnp
    }
    fn option(&self) -> &'static str {
        "sim"
    }
    fn doorbell(&mut self, request: &DoorbellRequest) -> Result<DoorbellResponse, FirmwareError> {
        if request.kind == DoorbellKind::SvsmCall {
            return Err(FirmwareError::OtherPlatform("the simulated SVSM is only available under --platform sim-svsm"));
        }
        self.launch
            .doorbell(self.psp, request)?
            .ok_or(FirmwareError::OtherPlatform("the simulated TDX module is only available under --platform sim-tdx"))
    }
    fn endorsements(&mut self, _report: &[u8]) -> Result<Endorsements, FirmwareError> {
        Ok(Endorsements {
            certificates: self.psp.endorsements()?,
            source: "the guest forwarded no certificate table; using the host's VCEK and ASK".into(),
        })
    }
    fn collateral(&mut self, _quote: &[u8]) -> Result<Option<Collateral>, FirmwareError> {
        Ok(None)
    }
    /// The simulated PSP's certificate table, as the bridge reads the one it delivers.
    fn endorsements_ahead(&mut self) -> Option<Vec<Vec<u8>>> {
        let table = self.psp.certificate_table().ok()?;
        twi_verifier::snp::endorsements_from_table(&table).ok()
    }
}

/// `--platform sim-svsm`: one launch on the simulated PSP with the guest at the SVSM's guest
/// VMPL, and the simulated SVSM at VMPL0 answering its SVSM calls; everything else is the
/// simulated SEV-SNP launch's.
#[derive(Debug)]
pub struct SimSvsmFirmware<'a> {
    /// The launch (its VMPCK is the guest VMPL's) on the simulated PSP.
    pub snp: SimSnp<'a>,
    pub svsm: SimSvsm,
}

impl Firmware for SimSvsmFirmware<'_> {
    fn platform(&self) -> Platform {
        self.snp.platform()
    }
    fn option(&self) -> &'static str {
        "sim-svsm"
    }
    fn doorbell(&mut self, request: &DoorbellRequest) -> Result<DoorbellResponse, FirmwareError> {
        if request.kind != DoorbellKind::SvsmCall {
            return self.snp.doorbell(request);
        }
        // A call the SVSM cannot even read is the guest's fault: a failure status, as a
        // VMGEXIT the hypervisor rejects.
        let (status, response) = match self.svsm.call(self.snp.psp, &request.request) {
            Ok(answer) => (0, answer),
            Err(refusal) => {
                eprintln!("twi: the simulated SVSM refused a call: {refusal}");
                (1, Vec::new())
            }
        };
        Ok(DoorbellResponse { kind: request.kind, status, response, certificates: None })
    }
    fn endorsements(&mut self, report: &[u8]) -> Result<Endorsements, FirmwareError> {
        self.snp.endorsements(report)
    }
    fn collateral(&mut self, quote: &[u8]) -> Result<Option<Collateral>, FirmwareError> {
        self.snp.collateral(quote)
    }
    fn endorsements_ahead(&mut self) -> Option<Vec<Vec<u8>>> {
        self.snp.endorsements_ahead()
    }
}

/// `--platform sim-tdx`: the simulated TDX module and quoting enclave (the issuer was given
/// the simulated platform's collateral when it was told to trust its root).
#[derive(Debug)]
pub struct SimTd<'a> {
    pub tdx: &'a mut SimTdx,
}

impl Firmware for SimTd<'_> {
    fn platform(&self) -> Platform {
        Platform::SimTdx
    }
    fn option(&self) -> &'static str {
        "sim-tdx"
    }
    fn doorbell(&mut self, request: &DoorbellRequest) -> Result<DoorbellResponse, FirmwareError> {
        self.tdx
            .doorbell(request)
            .ok_or(FirmwareError::OtherPlatform("the simulated PSP is only available under --platform sim"))
    }
    fn endorsements(&mut self, _report: &[u8]) -> Result<Endorsements, FirmwareError> {
        Err(FirmwareError::OtherPlatform("a TD's quote carries its own PCK chain"))
    }
    fn collateral(&mut self, _quote: &[u8]) -> Result<Option<Collateral>, FirmwareError> {
        Ok(None)
    }
}
