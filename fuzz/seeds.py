#!/usr/bin/env python3
"""fuzz/seeds.py -- (re)write the seed corpora fuzz/corpus/NAME/ from the
inputs of the test transcripts (tests/test_*.py sessions, unit test
vectors).  Run it after changing a harness's input format; the files are
committed, so the fuzzers start from valid protocol input."""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(name, data):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def dns_name(n):
    return b"".join(bytes([len(p)]) + p.encode() for p in n.split(".") if p) + b"\0"


def ptr_reply(answers, ancount=None):
    """A reply to 1.0.0.127.in-addr.arpa PTR with (type, name) answers."""
    hdr = struct.pack(">HHHHHH", 0x1234, 0x8180, 1, len(answers) if ancount is None else ancount, 0, 0)
    ans = b""
    for typ, target in answers:
        rdata = dns_name(target)
        ans += b"\xc0\x0c" + struct.pack(">HHIH", typ, 1, 300, len(rdata)) + rdata
    return hdr + dns_name("1.0.0.127.in-addr.arpa") + struct.pack(">HH", 12, 1) + ans


def dns_txt_reply(texts, qname=b"\x012\x010\x010\x03127\x03rbl\x07example\x00", rcode=0, ancount=None):
    hdr = struct.pack(">HHHHHH", 0x1234, 0x8180 | rcode, 1, len(texts) if ancount is None else ancount, 0, 0)
    q = qname + struct.pack(">HH", 16, 1)
    ans = b""
    for t in texts:
        rdata = b"".join(bytes([len(p)]) + p for p in t)
        ans += b"\xc0\x0c" + struct.pack(">HHIH", 16, 1, 300, len(rdata)) + rdata
    return hdr + q + ans


def main():
    for a in ["FROM:<alice@example.com>", "TO:<bob@example.net> NOTIFY=NEVER ORCPT=rfc822;bob@example.net",
              "FROM:<> SIZE=1000 BODY=8BITMIME", "FROM: alice@example.com", "TO:<\"q u\"@example.com>",
              "FROM:<a\\>b@example.com> SMTPUTF8", "TO:<@relay.example:user@example.com>",
              "FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8 SIZE=12", "TO:<postmaster>", "FROM:<<>>"]:
        put("smtp_address", a)
    bodies = [b"Subject: x\r\n\r\nhello\r\n.\r\n", b"Subject: x\r\n\r\n..dot\r\n.\r\nMAIL FROM:<x>\r\n",
              b"a\nb\n.\n", b"a\r\n.\nb\r\n.\r\n", b"bare\rcr\r\n.\r\n", b"x" * 5000 + b"\r\n.\r\n",
              b".\r\n", b"\r\n.\r\n", b"line\n..\n.\n"]
    for mode in range(3):
        for b in bodies:
            put("smtp_body", bytes([mode, 3, 5, 200, 1]) + b)
    for t in ["AGFsaWNlAHNlY3JldA==", "YQ==", "YWI=", "YWJj", "", "YR==", "=", "YWxpY2U=\r\n"]:
        put("base64", t)
    for t in ["PLAIN AGFsaWNlAHNlY3JldA==", "PLAIN\nAGFsaWNlAHNlY3JldA==", "LOGIN\nYWxpY2U=\nc2VjcmV0",
              "LOGIN YWxpY2U=\nc2VjcmV0", "CRAM-MD5\nYWxpY2UgMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
              "PLAIN =", "PLAIN\n*", "AGFsaWNlAHNlY3JldA==", "DIGEST-MD5", "login\n\n"]:
        put("sasl", t)
    ok = b"\x00\x02\xaa\xbb\x01\x05alice\x02\x041000\x03\x041001\x05\x04/tmp\x04\x01R\x00"
    for pkt in [b"\x02\xaa\xbb" + ok, b"\x00" + b"\x64\x00\x10\x011\x00", b"\x00\x07\x00\x00",
                b"\x00\x00\x00\x01\x05alice\x02\x041000\x03\x041001\x00",
                b"\x00\x00\x00\x01\x01u\x02\x0a4294967295\x03\x011\x05\x01/\x00"]:
        put("cvm_reply", pkt)
    rules = [":sender\nd*@spam.example:*:5.7.1 Go away\nz*@slow.example\nk*@ok.example:*:Fine\\nsecond line\n"
             "dx@oct.example::Go away\\101x\np*@pass.example\n\0a@spam.example",
             ":s\n&*@a.example:*\n&!bad@*:*\nd*:*:AND fired\nz*@b.example:*:second\n\0bad@a.example",
             ":s\nd!*@*:*:no at\nd!!*@dbl.example:*:double\nd*@[abc].example:*:set\nd*@[!q]y.example:*:negset\n\0q@zy.example",
             ":s\nn*@env.example:::::REJECT=-from a rule\\, with comma: and colon,X=1\n\0x@env.example",
             ":r\nd*:[[list]]:in list\nk*:[[@hosts]]\n\0a@b", ":s\nn*@small.example:::10\nk*\n\0x@small.example",
             "# comment\nk*:*\n:r\nK*@final.example:*:done\n\0a@final.example"]
    for r in rules:
        put("mailrules", r)
    for p in ["\x10Subject: *viagra*\n=Spam here\n:X-Bad*\n\\begin*\n\0Subject: buy viagra\nX-Bad: 1\n\nbegin 644 x\nbody\n",
              "\x00*\n\0a\nb\n", "\x05#c\n=t\n*x*\n\0" + "x" * 300 + "\n"]:
        put("patterns", p)
    for c in ["RETR 1\r\n", "TOP 2 10\r\n", "LIST\r\n", "LIST 3", "UIDL 99999999999999999999", "DELE -1",
              "USER alice\r\n", "PASS secret", "AUTH PLAIN AGFsaWNlAHNlY3JldA==", "TOP 1 -5", "RETR 1 junk", "QUIT\n"]:
        put("pop3_command", "\x05" + c)
    for c in ["a1 LOGIN alice secret\n", "a2 LOGIN {5}\nalice {6+}\nsecret\n", "a3 AUTHENTICATE PLAIN\n",
              "a4 CAPABILITY\r\n", "a5 LOGIN \"al\\\"ice\" \"s p\"\n", "* NOOP\n", "a6 STARTTLS\n",
              "a7 LOGIN {99999999999999999999}\n", "a8 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\n"]:
        put("imap_command", c)
    put("dns_txt", dns_txt_reply([[b"listed: see http://rbl.example/"]]))
    put("dns_txt", dns_txt_reply([[b"part one ", b"part two"], [b"second record"]]))
    put("dns_txt", dns_txt_reply([[b""]]))
    put("dns_txt", dns_txt_reply([], rcode=3))
    put("dns_txt", dns_txt_reply([[b"x"]], ancount=3))
    # mailfrontd -h: PTR replies (first byte of the input also picks the buffer size)
    for answers, count in (([(12, "mail.example.com")], None), ([(12, "bad name!.example")], None),
                           ([(5, "x.example"), (12, "y.example")], None), ([], None), ([(12, "a.example")], 3),
                           ([(12, "long." + "a" * 60 + ".example")], None)):
        put("ptr_reply", ptr_reply(answers, count))
    for t in ["example.com\n# comment\n.example.org\n  Foo.Com \r\n\n", "", "a\0b\n", "x" * 300 + "\n"]:
        put("qmail_control", t)
    for r in [b"SPAMD/1.1 0 EX_OK\r\nContent-length: 40\r\nSpam: True ; 15 / 5\r\n\r\nX-Spam-Status: Yes, score=15\n\nbody\n",
              b"SPAMD/1.1 0 EX_OK\r\nContent-length: 21\r\n\r\nX-Spam-Status: No\n\nb\n",
              b"SPAMD/1.1 76 Bad header line\r\n\r\n", b"SPAMD/1.1 0 EX_OK\r\n\r\n",
              b"SPAMD/1.1 0 EX_OK\r\nContent-length: 999\r\n\r\nshort"]:
        put("spamd_reply", r)
    for r in [b"stream: OK\0", b"stream: Eicar-Test-Signature FOUND\0", b"stream: OK\n",
              b"INSTREAM size limit exceeded. ERROR\0", b"stream: " + b"V" * 5000 + b" FOUND\0"]:
        put("clamd_reply", r)

    # proxy_header: selector byte (versions), then the first bytes of a connection
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    v2 = sig + b"\x21\x11" + struct.pack(">H", 12) + bytes([192, 0, 2, 1, 198, 51, 100, 7]) + struct.pack(">HH", 56324, 25)
    v2_6 = sig + b"\x21\x21" + struct.pack(">H", 36) + bytes(range(16)) + bytes(range(16, 32)) + struct.pack(">HH", 1, 2)
    v2_local = sig + b"\x20\x00" + struct.pack(">H", 0)
    v2_tlv = sig + b"\x21\x11" + struct.pack(">H", 19) + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack(">HH", 1, 2) + b"\x04\x00\x04abcd"
    for sel, b in [(2, b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 25\r\nEHLO x\r\n"),
                   (2, b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 25\r\n"), (2, b"PROXY UNKNOWN\r\n"),
                   (0, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), (2, v2 + b"EHLO x\r\n"), (1, v2_6), (1, v2_local),
                   (2, v2_tlv), (2, b"EHLO no proxy header\r\n"), (2, b"PROXY TCP4 999.1.1.1 1.1.1.1 1 2\r\n")]:
        put("proxy_header", bytes([sel]) + b)

    # milter_reply: selector byte (0 optneg, 1 replycode, 2 strings, 3 $MILTERS list, 4 time/packet)
    optneg = struct.pack(">III", 6, 0x1ff, 0x1fffff & ~0x800) + struct.pack(">I", 1) + b"{auth_type} i\0"
    for sel, body in [(0, optneg), (0, struct.pack(">III", 2, 1, 0)), (1, b"550 5.7.1 go away\0"),
                      (1, b"550-5.7.1 first\r\n550 5.7.1 second\0"), (1, b"421 4.7.0 later\0"),
                      (2, b"From\0a@b\0"), (2, b"X-H\0value\0"),
                      (3, b"inet:127.0.0.1:8891, unix:/run/m.sock { inet6:[::1]:10025, default_action=accept, "
                          b"command_timeout=30s, content_timeout=5m }"), (4, b"30s"), (4, b"2h")]:
        put("milter_reply", bytes([sel]) + body)
    for j in [b'{"action":"reject","score":15.5,"required_score":15,"symbols":{"GTUBE":{"score":0}}}',
              b'{"action":"add header","milter":{"add_headers":{"X-Spam":{"value":"yes","order":1}},'
              b'"remove_headers":{"X-Old":1}},"subject":"[SPAM] %s"}',
              b'{"action":"soft reject","messages":{"smtp_message":"try later \\u00e9"}}', b"[]", b'"x"',
              b"{" * 40]:
        put("rspamd_json", j)
    for m in [b"Subject: hi\r\nFrom: a@b\r\n continued\r\n\r\nbody\r\n", b"From a line\nX: y\n\nbody",
              b"no header line\n\nbody\n", b"X-Long: " + b"v" * 3000 + b"\n\nb\n"]:
        put("mail_headers", bytes([4, 5]) + b"\x03\x07\x01\x10\x02" + m)

    # session: selector byte (protocol = byte % 3, limits = byte / 3 % 4), then the client's bytes
    smtp = [b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
            b"HELO x\r\nMAIL FROM:<a@b> SIZE=100\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nRSET\r\nMAIL FROM:<>\r\n"
            b"RCPT TO:<x@y>\r\nDATA\r\n..dot\r\n.\r\nNOOP\r\nVRFY x\r\nHELP\r\nQUIT\r\n",
            b"EHLO x\r\nMAIL FROM:<a@b> BODY=8BITMIME\r\nRCPT TO:<c@d>\r\nBDAT 5\r\nhelloBDAT 0 LAST\r\nQUIT\r\n",
            b"EHLO x\r\nMAIL FROM:<j\xc3\xb6rg@b\xc3\xbccher.example> SMTPUTF8\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\n.\r\n",
            b"EHLO x\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTARTTLS\r\nFOO\r\nBAR\r\nBAZ\r\nMAIL FROM:<a@b>\r\nDATA\r\n",
            b"ehlo x\nmail from:<a@b>\nrcpt to:<c@d>\ndata\nbare\rcr\n.\n"]
    for sel in (0, 3, 6, 9):
        for s in smtp:
            put("session", bytes([sel]) + s)

    def ns(b):
        return str(len(b)).encode() + b":" + b + b","
    msg = b"Subject: q\n\nbody\n"
    qmqp = ns(ns(msg) + ns(b"a@b") + ns(b"c@d") + ns(b"e@f"))
    put("session", bytes([1]) + qmqp)
    put("session", bytes([4]) + qmqp)
    qmtp = ns(b"\n" + msg) + ns(b"a@b") + ns(ns(b"c@d") + ns(b"e@f"))
    put("session", bytes([2]) + qmtp * 2)
    put("session", bytes([5]) + qmtp)


if __name__ == "__main__":
    main()
