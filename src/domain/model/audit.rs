//! The audit trail's proof: the hash each entry carries, and what checking a trail found.

use std::fmt;

/// SHA-256 of an audit entry chained to the one before it (see `domain::audit_chain`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditHash([u8; 32]);

impl AuditHash {
    /// The hash from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The hash from a stored value, which must be 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(64);
        for byte in self.0 {
            hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        hex
    }
}

impl fmt::Debug for AuditHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditHash({})", self.to_hex())
    }
}

impl fmt::Display for AuditHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What checking an instance's audit trail against its hash chain found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditVerification {
    /// Every entry's hash is what its fields, the step data it covers and the entry before it
    /// give.
    Valid { entries: usize },
    /// The first entry (by id) whose stored hash is not what it should be: it, the step it
    /// decided, or an entry before it was changed, removed or inserted.
    Invalid { first_bad_entry_id: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_written_in_lower_case_hex() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xab;
        bytes[31] = 0x0f;
        let hex = AuditHash::from_bytes(bytes).to_hex();
        assert_eq!(hex.len(), 64);
        assert!(hex.starts_with("ab00"));
        assert!(hex.ends_with("000f"));
    }

    #[test]
    fn a_stored_hash_must_be_32_bytes() {
        assert!(AuditHash::from_slice(&[1u8; 32]).is_some());
        assert!(AuditHash::from_slice(&[1u8; 31]).is_none());
        assert!(AuditHash::from_slice(&[]).is_none());
    }
}
