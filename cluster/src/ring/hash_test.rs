use super::xxh64;

/// Reference values from the `xxhash` C library (via its Python binding).
#[test]
fn matches_reference_vectors() {
    let seed = 0x9E37_79B9_7F4A_7C15;
    let hundred: Vec<u8> = (0..100).collect();
    let cases: [(&[u8], u64, u64); 6] = [
        (b"", 0xEF46_DB37_51D8_E999, 0xC434_9FC9_3C01_0000),
        (b"a", 0xD24E_C4F1_A98C_6E5B, 0x9A7C_6D2E_A455_68C9),
        (b"abc", 0x44BC_2CF5_AD77_0999, 0x2ED0_F59D_6B43_AC8B),
        (b"0123456789abcdef0123456789abcdef", 0x642A_9495_8E71_E6C5, 0x91C9_C9C7_21EA_6985),
        (b"The quick brown fox jumps over the lazy dog", 0x0B24_2D36_1FDA_71BC, 0x7CFA_C668_32F6_6B74),
        (&hundred, 0x6AC1_E580_3216_6597, 0x3B97_D91E_BA03_E785),
    ];
    for (input, unseeded, seeded) in cases {
        assert_eq!(xxh64(input, 0), unseeded, "xxh64({input:?}, 0)");
        assert_eq!(xxh64(input, seed), seeded, "xxh64({input:?}, seed)");
    }
}
