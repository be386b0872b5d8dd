//! The architectures nodekit can emulate: their OCI names, qemu names and ELF identity (what a
//! binfmt_misc handler's magic is compared with).

use nodekit_oci::Platform;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arch {
    /// The OCI architecture (`arm64`).
    pub oci: &'static str,
    /// The default variant an image of this architecture names, if any.
    pub variant: Option<&'static str>,
    /// qemu's name (`aarch64`), as in `qemu-aarch64-static`.
    pub qemu: &'static str,
    elf_class: u8,
    big_endian: bool,
    elf_machine: u16,
}

const fn arch(
    oci: &'static str,
    variant: Option<&'static str>,
    qemu: &'static str,
    elf_class: u8,
    big_endian: bool,
    elf_machine: u16,
) -> Arch {
    Arch {
        oci,
        variant,
        qemu,
        elf_class,
        big_endian,
        elf_machine,
    }
}

const ELF32: u8 = 1;
const ELF64: u8 = 2;

pub const ARCHES: &[Arch] = &[
    arch("amd64", None, "x86_64", ELF64, false, 62),
    arch("arm64", None, "aarch64", ELF64, false, 183),
    arch("arm", Some("v7"), "arm", ELF32, false, 40),
    arch("386", None, "i386", ELF32, false, 3),
    arch("riscv64", None, "riscv64", ELF64, false, 243),
    arch("ppc64le", None, "ppc64le", ELF64, false, 21),
    arch("s390x", None, "s390x", ELF64, true, 22),
    arch("mips64le", None, "mips64el", ELF64, false, 8),
    arch("loong64", None, "loongarch64", ELF64, false, 258),
];

impl Arch {
    /// The architecture of `platform` (variants aside: qemu-arm serves every arm variant).
    pub fn of(platform: &Platform) -> Option<Arch> {
        ARCHES
            .iter()
            .find(|a| a.oci == platform.architecture)
            .copied()
    }

    pub fn platform(&self) -> Platform {
        Platform::new("linux", self.oci, self.variant)
    }

    /// The first 20 bytes of an executable of this architecture: enough for any handler's magic.
    pub fn elf_header(&self) -> [u8; 20] {
        let mut header = [0u8; 20];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = self.elf_class;
        header[5] = if self.big_endian { 2 } else { 1 };
        header[6] = 1; // EV_CURRENT
        let (e_type, e_machine) = if self.big_endian {
            (2u16.to_be_bytes(), self.elf_machine.to_be_bytes())
        } else {
            (2u16.to_le_bytes(), self.elf_machine.to_le_bytes())
        };
        header[16..18].copy_from_slice(&e_type);
        header[18..20].copy_from_slice(&e_machine);
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_match_real_executables() {
        // The first 20 bytes of Debian's static busybox for amd64 and arm64.
        let amd64 = hex::decode("7f454c4602010103000000000000000002003e00").unwrap();
        let arm64 = hex::decode("7f454c460201010300000000000000000200b700").unwrap();
        let strip_abi = |mut h: Vec<u8>| {
            h[7] = 0;
            h
        };
        let find = |name: &str| ARCHES.iter().find(|a| a.oci == name).unwrap();
        assert_eq!(find("amd64").elf_header().to_vec(), strip_abi(amd64));
        assert_eq!(find("arm64").elf_header().to_vec(), strip_abi(arm64));
    }

    #[test]
    fn platforms_map_to_architectures() {
        let arm = Arch::of(&Platform::parse("linux/arm/v6").unwrap()).unwrap();
        assert_eq!(arm.qemu, "arm");
        assert_eq!(arm.platform().to_string(), "linux/arm/v7");
        let arm64 = Arch::of(&Platform::parse("linux/aarch64").unwrap()).unwrap();
        assert_eq!(arm64.qemu, "aarch64");
        assert!(Arch::of(&Platform::parse("linux/sparc").unwrap()).is_none());
    }
}
