using ActorPool.Hosting;
using ActorPool.Worker;
using Xunit;

namespace ActorPool.Tests.Protocol;

/// <summary>The line a new worker reads first: every field round-trips, and a damaged line is refused, not misread.</summary>
public class HandshakeCodecSpec
{
    private static readonly TlsIdentity Identity = new("-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----", "key", ["pin1", "pin2"]);

    [Fact]
    public void Every_field_must_round_trip_and_absent_ones_must_stay_absent()
    {
        var full = new WorkerHandshake("akka.tcp://actorpool@127.0.0.1:4053/user/coordinator", "w7", "s3cret", 1234, 1 << 20, "/dev/shm/x",
            "/dev/shm/x/data.sock", "App", [1, 2, 3], Daemon: true, Identity, "forkserver", Identity with { KeyPem = "other" }, ["h1", "h2"], "akka.tcp://h");
        var copy = WorkerHandshake.FromLine(full.ToLine());
        Assert.Equal(full with { Target = null, Tls = null, Trust = null, Warm = null }, copy with { Target = null, Tls = null, Trust = null, Warm = null });
        Assert.Equal(full.Target, copy.Target);
        Assert.Equal((Identity.CertificatePem, Identity.KeyPem), (copy.Tls!.CertificatePem, copy.Tls.KeyPem));
        Assert.Equal(Identity.Pins, copy.Tls.Pins);
        Assert.Equal("other", copy.Trust!.KeyPem);
        Assert.Equal(["h1", "h2"], copy.Warm!);

        var bare = new WorkerHandshake("c", "w1", "s", 1, 128000);
        Assert.Equal(bare, WorkerHandshake.FromLine(bare.ToLine()));
        Assert.DoesNotContain('\n', full.ToLine());

        var identity = HandshakeCodec.ReadTls(HandshakeCodec.Write(Identity));
        Assert.Equal(Identity.Pins, identity.Pins);
    }

    [Fact]
    public void A_damaged_or_foreign_line_must_be_refused_saying_so()
    {
        var line = new WorkerHandshake("c", "w1", "s", 1, 128000, Warm: ["a"]).ToLine();
        var bytes = Convert.FromBase64String(line);
        Assert.Contains("not base64", Assert.Throws<FormatException>(() => WorkerHandshake.FromLine("{\"coordinator\":1}")).Message);
        Assert.Contains("ends before", Assert.Throws<FormatException>(() => WorkerHandshake.FromLine(Convert.ToBase64String(bytes[..^1]))).Message);
        Assert.Contains("bytes after", Assert.Throws<FormatException>(() => WorkerHandshake.FromLine(Convert.ToBase64String([.. bytes, 0]))).Message);
        Assert.Contains("another ActorPool version", Assert.Throws<FormatException>(() => WorkerHandshake.FromLine(HandshakeCodec.Write(Identity))).Message);
        // A count far above what the line holds is refused before anything is allocated for it.
        var count = bytes.AsSpan().IndexOf(new byte[] { 1, 0, 0, 0, 1, (byte)'a' }); // the warm list: its count (1), then its one string
        Assert.True(count > 0);
        bytes[count + 3] = 0x7F;
        Assert.Contains("cannot fit", Assert.Throws<FormatException>(() => WorkerHandshake.FromLine(Convert.ToBase64String(bytes))).Message);
    }
}
