//! Dev-only crate: its tests (`tests/boot_path.rs`) run the ROM's reset vector and boot stub
//! under Unicorn, mapping only the ranges the ROM's SEV and TDVF metadata declare. Nothing here
//! is built into the product.
