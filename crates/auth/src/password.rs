//! Password hashing, verification and policy.
//!
//! Hashes are argon2id (the variant OWASP and RFC 9106 recommend: resistant
//! to both GPU cracking and side channels) stored as self-describing PHC
//! strings (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), each with its
//! own random 16-byte salt. The cost parameters are OWASP's first
//! recommended argon2id configuration: 19 MiB memory, 2 iterations,
//! 1 lane. Because the parameters travel inside the PHC string, they can be
//! raised later without invalidating old hashes; [`needs_rehash`] tells the
//! login path when to re-hash a successfully verified password.

use std::sync::LazyLock;

use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use rand::rngs::OsRng;
use rand::{Rng, TryRngCore};

use crate::{AuthError, Result};

/// Minimum length of a new password, in Unicode characters. Length is what
/// makes passwords strong; NIST SP 800-63B and OWASP favour a length floor
/// over composition rules, which users game predictably.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Maximum length of a new password, in Unicode characters. Generous enough
/// for any pass phrase or password manager, small enough that nobody can make
/// us hash megabytes per login attempt.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Length of passwords made by [`generate_password`].
pub const GENERATED_PASSWORD_LEN: usize = 20;

/// Characters for generated passwords: letters and digits without the
/// look-alikes `0 O o 1 I l`, so a password read off a terminal can be typed
/// back without guessing. 56 symbols, so 20 of them carry about 116 bits.
const GENERATED_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";

/// Production argon2id memory cost in KiB (OWASP: m=19456 KiB, t=2, p=1).
const M_COST_KIB: u32 = 19 * 1024;
/// Production argon2id iterations.
const T_COST: u32 = 2;
/// Production argon2id parallelism (lanes).
const P_COST: u32 = 1;

/// The argon2id instance used for new hashes, with the production
/// parameters everywhere, tests included: at the workspace's dev opt-level
/// one hash takes about 0.1 s, so there is no reason for a cheaper test
/// configuration that would leave the real one untested.
fn hasher() -> Argon2<'static> {
    hasher_with(M_COST_KIB, T_COST, P_COST)
}

fn hasher_with(m: u32, t: u32, p: u32) -> Argon2<'static> {
    // The constants are valid argon2 parameters, so this cannot fail.
    let params = Params::new(m, t, p, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy: at least
/// [`MIN_PASSWORD_CHARS`] and at most [`MAX_PASSWORD_CHARS`] Unicode
/// characters. Only new passwords are checked: verification accepts
/// whatever was set before a policy change.
pub fn check_password_policy(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AuthError::PasswordTooShort {
            min: MIN_PASSWORD_CHARS,
            actual: chars,
        });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AuthError::PasswordTooLong {
            max: MAX_PASSWORD_CHARS,
        });
    }
    Ok(())
}

/// [`check_password_policy`] plus: the password must not be the user name
/// (ignoring case), the first thing an attacker tries.
pub fn check_password_policy_for(username: &str, password: &str) -> Result<()> {
    check_password_policy(password)?;
    if password.trim().to_lowercase() == username.trim().to_lowercase() {
        return Err(AuthError::PasswordIsUsername);
    }
    Ok(())
}

/// Hashes a new password into an argon2id PHC string with a fresh random
/// salt. Enforces [`check_password_policy`] first, so no code path can
/// store a password that violates the policy.
pub fn hash_password(password: &str) -> Result<String> {
    check_password_policy(password)?;
    hash_unchecked(&hasher(), password)
}

fn hash_unchecked(hasher: &Argon2<'_>, password: &str) -> Result<String> {
    // `hash_password` draws the salt from the OS RNG (getrandom).
    hasher
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// Whether `password` matches the stored PHC string. The comparison of the
/// derived key is constant-time inside the argon2/password-hash crates, and
/// the cost parameters come from the PHC string itself. A malformed PHC
/// string never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    // Verification uses the parameters recorded in `phc`; the instance's
    // own parameters only matter for hashing.
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut memory = ReturnedMemory::new(params.block_count());
    let mut computed = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut computed,
        memory.blocks(),
    );
    // `Output`'s equality is constant-time (password-hash's note on it).
    hashed.is_ok() && Output::new(&computed).is_ok_and(|computed| computed == *expected)
}

/// The 19 MiB an argon2id run works in, allocated so that freeing it gives
/// it back to the operating system at once. glibc serves an allocation
/// this size from a thread's arena once a freed one has raised its mmap
/// threshold, and keeps it there: a burst of logins left hundreds of MiB
/// resident. The threshold never rises above 32 MiB, so a capacity beyond
/// that is always its own mapping, unmapped on free; only the blocks in
/// use are ever touched, so only they are resident.
struct ReturnedMemory(Vec<argon2::Block>);

/// Above glibc's largest dynamic mmap threshold (32 MiB on 64-bit).
const ALWAYS_MAPPED_BYTES: usize = 33 << 20;

impl ReturnedMemory {
    fn new(blocks: usize) -> ReturnedMemory {
        let capacity = blocks.max(ALWAYS_MAPPED_BYTES / argon2::Block::SIZE);
        let mut memory = Vec::with_capacity(capacity);
        memory.resize(blocks, argon2::Block::new());
        ReturnedMemory(memory)
    }

    fn blocks(&mut self) -> &mut [argon2::Block] {
        &mut self.0
    }
}

/// Spends the same time as [`verify_password`] against a real hash and
/// returns `false`. Call it when the user name does not exist, so response
/// timing does not reveal which accounts exist.
pub fn dummy_verify(password: &str) -> bool {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        hash_unchecked(&hasher(), &generate_password()).expect("hashing a generated password")
    });
    let _ = verify_password(password, &DUMMY);
    false
}

/// Whether a stored hash should be replaced by a fresh [`hash_password`]
/// after a successful login: it is not argon2id v19 with the current cost
/// parameters (e.g. the parameters were raised since it was made).
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let current = hasher();
    let current = current.params();
    let same_params = Params::try_from(&parsed).is_ok_and(|p| {
        p.m_cost() == current.m_cost()
            && p.t_cost() == current.t_cost()
            && p.p_cost() == current.p_cost()
    });
    !(parsed.algorithm.as_str() == argon2::ARGON2ID_IDENT.as_str()
        && parsed.version == Some(Version::V0x13.into())
        && same_params)
}

/// A new random password of [`GENERATED_PASSWORD_LEN`] characters from an
/// unambiguous alphabet, drawn uniformly from the OS RNG. Used by `demo` to
/// print the initial admin password.
///
/// # Panics
/// If the operating system's random number generator fails, which leaves
/// nothing secure to fall back to.
pub fn generate_password() -> String {
    let mut rng = OsRng.unwrap_err();
    (0..GENERATED_PASSWORD_LEN)
        .map(|_| char::from(GENERATED_ALPHABET[rng.random_range(0..GENERATED_ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "correct horse battery";

    #[test]
    fn hash_verify_roundtrip() {
        let phc = hash_password(GOOD).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        // $argon2id$v=19$<params>$<22-char salt>$<43-char hash>
        let fields: Vec<&str> = phc.split('$').collect();
        assert_eq!(fields.len(), 6, "{phc}");
        assert_eq!((fields[4].len(), fields[5].len()), (22, 43), "{phc}");
        assert!(verify_password(GOOD, &phc));
    }

    #[test]
    fn wrong_password_is_rejected() {
        let phc = hash_password(GOOD).unwrap();
        assert!(!verify_password("correct horse battery!", &phc));
        assert!(!verify_password("", &phc));
        assert!(!verify_password("Correct horse battery", &phc));
    }

    #[test]
    fn salts_are_random() {
        let a = hash_password(GOOD).unwrap();
        let b = hash_password(GOOD).unwrap();
        assert_ne!(a, b);
        assert!(verify_password(GOOD, &a) && verify_password(GOOD, &b));
    }

    #[test]
    fn malformed_hash_never_matches() {
        assert!(!verify_password(GOOD, ""));
        assert!(!verify_password(GOOD, "plaintext"));
        assert!(!verify_password(GOOD, GOOD));
        assert!(!verify_password(GOOD, "$argon2id$v=19$m=8,t=1,p=1$$"));
    }

    #[test]
    fn policy_errors() {
        assert_eq!(
            check_password_policy("short"),
            Err(AuthError::PasswordTooShort { min: 12, actual: 5 })
        );
        assert_eq!(
            check_password_policy("elevenchars"),
            Err(AuthError::PasswordTooShort {
                min: 12,
                actual: 11
            })
        );
        assert_eq!(check_password_policy("twelve chars"), Ok(()));
        // Length counts characters, not bytes: 12 two-byte characters pass.
        assert_eq!(check_password_policy(&"é".repeat(12)), Ok(()));
        assert_eq!(
            check_password_policy(&"é".repeat(11)),
            Err(AuthError::PasswordTooShort {
                min: 12,
                actual: 11
            })
        );
        assert_eq!(check_password_policy(&"x".repeat(1024)), Ok(()));
        assert_eq!(
            check_password_policy(&"x".repeat(1025)),
            Err(AuthError::PasswordTooLong { max: 1024 })
        );
        assert_eq!(
            AuthError::PasswordTooShort { min: 12, actual: 5 }.to_string(),
            "password is too short: it has 5 characters, at least 12 are required"
        );
    }

    #[test]
    fn hash_password_enforces_policy() {
        assert_eq!(
            hash_password("hunter2"),
            Err(AuthError::PasswordTooShort { min: 12, actual: 7 })
        );
    }

    #[test]
    fn password_must_not_be_username() {
        assert_eq!(
            check_password_policy_for("administrator", "Administrator"),
            Err(AuthError::PasswordIsUsername)
        );
        assert_eq!(
            check_password_policy_for("admin", "admin"),
            Err(AuthError::PasswordTooShort { min: 12, actual: 5 })
        );
        assert_eq!(check_password_policy_for("administrator", GOOD), Ok(()));
    }

    #[test]
    fn dummy_verify_is_false() {
        assert!(!dummy_verify(GOOD));
        assert!(!dummy_verify(""));
    }

    #[test]
    fn rehash_detection() {
        let current = hash_password(GOOD).unwrap();
        assert!(!needs_rehash(&current));
        let weaker = hash_unchecked(&hasher_with(Params::MIN_M_COST, 2, 1), GOOD).unwrap();
        assert!(needs_rehash(&weaker));
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(Params::MIN_M_COST, 1, 1, None).unwrap(),
        );
        let argon2i = hash_unchecked(&argon2i, GOOD).unwrap();
        assert!(argon2i.starts_with("$argon2i$"));
        assert!(needs_rehash(&argon2i));
        assert!(needs_rehash("garbage"));
    }

    #[test]
    fn production_params_are_owasp() {
        assert_eq!((M_COST_KIB, T_COST, P_COST), (19_456, 2, 1));
    }

    #[test]
    fn hashes_carry_the_production_params() {
        let phc = hash_password(GOOD).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    }

    #[test]
    fn verify_uses_the_params_in_the_hash() {
        // A hash made with other (here: cheaper) parameters still verifies,
        // because verification reads them from the PHC string.
        let cheap = hash_unchecked(&hasher_with(Params::MIN_M_COST, 1, 1), GOOD).unwrap();
        assert!(cheap.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{cheap}");
        assert!(verify_password(GOOD, &cheap));
        assert!(!verify_password("wrong password!", &cheap));
    }

    #[test]
    fn generated_passwords() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.chars().count(), GENERATED_PASSWORD_LEN);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| GENERATED_ALPHABET.contains(&c)), "{a}");
        assert!(!a.contains(['0', 'O', 'o', '1', 'I', 'l']));
        assert_eq!(check_password_policy(&a), Ok(()));
        assert_eq!(GENERATED_ALPHABET.len(), 56);
    }
}
