//! Which Redis requests only read: every command of the request is one the
//! server's command table (`COMMAND INFO`) flags `readonly`. Such a request
//! may be sent again after its connection was lost with it written but
//! unanswered (`kernel::dispatch::lost`); MULTI/EXEC and scripts that may
//! write are not in the list, so transactions are never sent twice.

/// Upper-case names of the commands Redis 7 flags `readonly` (and that do
/// not block; a blocking read runs on a dedicated connection anyway).
const READONLY: &[&[u8]] = &[
    b"BITCOUNT",
    b"BITFIELD_RO",
    b"BITPOS",
    b"DBSIZE",
    b"DUMP",
    b"EVALSHA_RO",
    b"EVAL_RO",
    b"EXISTS",
    b"EXPIRETIME",
    b"FCALL_RO",
    b"GEODIST",
    b"GEOHASH",
    b"GEOPOS",
    b"GEORADIUSBYMEMBER_RO",
    b"GEORADIUS_RO",
    b"GEOSEARCH",
    b"GET",
    b"GETBIT",
    b"GETRANGE",
    b"HEXISTS",
    b"HGET",
    b"HGETALL",
    b"HKEYS",
    b"HLEN",
    b"HMGET",
    b"HRANDFIELD",
    b"HSCAN",
    b"HSTRLEN",
    b"HVALS",
    b"KEYS",
    b"LCS",
    b"LINDEX",
    b"LLEN",
    b"LPOS",
    b"LRANGE",
    b"MGET",
    b"PEXPIRETIME",
    b"PTTL",
    b"RANDOMKEY",
    b"SCAN",
    b"SCARD",
    b"SDIFF",
    b"SINTER",
    b"SINTERCARD",
    b"SISMEMBER",
    b"SMEMBERS",
    b"SMISMEMBER",
    b"SORT_RO",
    b"SRANDMEMBER",
    b"SSCAN",
    b"STRLEN",
    b"SUBSTR",
    b"SUNION",
    b"TOUCH",
    b"TTL",
    b"TYPE",
    b"XLEN",
    b"XPENDING",
    b"XRANGE",
    b"XREVRANGE",
    b"ZCARD",
    b"ZCOUNT",
    b"ZDIFF",
    b"ZINTER",
    b"ZINTERCARD",
    b"ZLEXCOUNT",
    b"ZMSCORE",
    b"ZRANDMEMBER",
    b"ZRANGE",
    b"ZRANGEBYLEX",
    b"ZRANGEBYSCORE",
    b"ZRANK",
    b"ZREVRANGE",
    b"ZREVRANGEBYLEX",
    b"ZREVRANGEBYSCORE",
    b"ZREVRANK",
    b"ZSCAN",
    b"ZSCORE",
    b"ZUNION",
];

/// Whether `name` (any case) is a read-only command.
pub fn is_readonly(name: &[u8]) -> bool {
    if name.len() > 24 {
        return false;
    }
    let mut up = [0u8; 24];
    for (d, c) in up.iter_mut().zip(name) {
        *d = c.to_ascii_uppercase();
    }
    READONLY.contains(&&up[..name.len()])
}

/// Whether every command of an encoded request (`*N\r\n$len\r\narg\r\n...`,
/// one or more) is read-only. Anything that does not parse: no.
pub fn only_reads(mut buf: &[u8]) -> bool {
    let mut any = false;
    while !buf.is_empty() {
        let Some((n, rest)) = header(buf, b'*') else {
            return false;
        };
        buf = rest;
        for i in 0..n {
            let Some((len, rest)) = header(buf, b'$') else {
                return false;
            };
            if rest.len() < len + 2 {
                return false;
            }
            if i == 0 && !is_readonly(&rest[..len]) {
                return false;
            }
            buf = &rest[len + 2..];
        }
        any |= n > 0;
    }
    any
}

/// `<kind><digits>\r\n` at the start of `buf`: the number and what follows.
fn header(buf: &[u8], kind: u8) -> Option<(usize, &[u8])> {
    let rest = buf.strip_prefix(&[kind])?;
    let end = rest.iter().position(|&c| c == b'\r')?;
    let n = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    Some((n, rest.get(end + 2..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes() {
        assert!(only_reads(b"*2\r\n$3\r\nget\r\n$1\r\nk\r\n"));
        assert!(only_reads(
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$5\r\nHMGET\r\n$1\r\nh\r\n$1\r\nf\r\n"
        ));
        assert!(!only_reads(b"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"));
        assert!(!only_reads(
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"
        ));
        assert!(!only_reads(
            b"*1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nEXEC\r\n"
        ));
        assert!(!only_reads(b""));
        assert!(!only_reads(b"*2\r\n$3\r\nGET\r\n$9\r\nk\r\n"));
    }
}
