using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ActorPool.Configuration;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Remote.Transport.DotNetty;

namespace ActorPool.Hosting;

/// <summary>
/// TLS between the members of an ActorPool cluster (<c>actorpool.cluster.tls</c>), always mutual, in one of two forms:
/// <list type="bullet">
/// <item>with <c>certificate</c> set: that PKCS#12 certificate, and a peer's certificate must be one of the pinned
/// thumbprints (by default the member's own: a shared certificate);</item>
/// <item>without (the default): a key derived from the cluster's secret (HMAC-SHA256), the same on every member that
/// holds the secret; a peer must present a certificate for that very key, which it can only do by holding the secret.
/// The secret itself never crosses the network: the TLS handshake proves it in both directions before Akka reads a
/// byte, and everything after is encrypted.</item>
/// </list>
/// <c>enabled = off</c> is plain TCP, refused on any address but loopback unless <c>allow-plain-text-network = on</c>.
/// </summary>
internal static class ClusterTls
{
    /// <summary>
    /// The cluster's TLS identity as a handshake hands it to the pool's own spawned workers (which then speak TLS to it
    /// like any member); null when the cluster has no TLS.
    /// </summary>
    public static TlsIdentity? Identity(Config actorpool)
    {
        if (Load(actorpool) is not { } loaded)
            return null;
        var certificate = loaded.Certificate;
        AsymmetricAlgorithm key = (AsymmetricAlgorithm?)certificate.GetRSAPrivateKey() ?? (AsymmetricAlgorithm?)certificate.GetECDsaPrivateKey()
            ?? throw new ArgumentException("actorpool.cluster.tls.certificate: its key is neither RSA nor ECDSA.");
        using (key)
            return new TlsIdentity(certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem(), [certificate.Thumbprint.ToUpperInvariant()]);
    }

    /// <summary>The Akka settings and setup that turn TLS on; null when <c>actorpool.cluster.tls.enabled = off</c>.</summary>
    /// <exception cref="ArgumentException">The certificate cannot be read, or a setting is invalid; the message says which.</exception>
    public static (Config Config, Setup Setup)? Configure(Config actorpool)
    {
        if (Load(actorpool) is not { } loaded)
            return null;
        var setup = new DotNettySslSetup(loaded.Certificate, false, true, loaded.Validate);
        return (ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.enable-ssl = true"), setup);
    }

    /// <summary>
    /// Refuses plain TCP on an address other members reach across a network: each of <paramref name="hostnames"/> (the
    /// member's bind or public host name) must be loopback when TLS is off, unless the user opted out explicitly.
    /// </summary>
    /// <exception cref="ArgumentException">TLS is off and the member would listen or be reached beyond loopback.</exception>
    public static void CheckPlainText(Config actorpool, IEnumerable<string> hostnames)
    {
        if (PoolSettings.Read(() => actorpool.GetBoolean("cluster.tls.enabled"), "actorpool.cluster.tls.enabled"))
            return;
        if (PoolSettings.Read(() => actorpool.GetBoolean("cluster.tls.allow-plain-text-network"), "actorpool.cluster.tls.allow-plain-text-network"))
            return;
        foreach (var host in hostnames)
        {
            if (!IsLoopback(host))
                throw new ArgumentException(
                    $"actorpool.cluster.tls.enabled = off, but this member is reachable at '{host}', which is not a loopback address: anyone who can " +
                    "reach it could join the cluster and read its traffic. Turn TLS back on (the default), or, on a network you trust, " +
                    "set actorpool.cluster.tls.allow-plain-text-network = on.");
        }
    }

    private static bool IsLoopback(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
        || (System.Net.IPAddress.TryParse(host, out var ip) && System.Net.IPAddress.IsLoopback(ip));

    private sealed record Loaded(X509Certificate2 Certificate, CertificateValidationCallback Validate);

    private static Loaded? Load(Config actorpool)
    {
        if (!PoolSettings.Read(() => actorpool.GetBoolean("cluster.tls.enabled"), "actorpool.cluster.tls.enabled"))
            return null;
        var path = PoolSettings.Read(() => actorpool.GetString("cluster.tls.certificate") ?? "", "actorpool.cluster.tls.certificate");
        return path.Length == 0 ? FromSecret(ClusterSettings.ReadShared(actorpool).Secret) : FromFile(actorpool, path);
    }

    private static Loaded FromFile(Config actorpool, string path)
    {
        var password = PoolSettings.Read(() => actorpool.GetString("cluster.tls.password") ?? "", "actorpool.cluster.tls.password");
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password, X509KeyStorageFlags.Exportable);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"actorpool.cluster.tls.certificate: cannot load '{path}' as a PKCS#12 certificate with its key " +
                                        $"(check the path and actorpool.cluster.tls.password): {e.Message}");
        }
        if (!certificate.HasPrivateKey)
            throw new ArgumentException($"actorpool.cluster.tls.certificate: '{path}' has no private key; a member needs its certificate's key.");
        var pins = PoolSettings.Read(() => actorpool.GetStringList("cluster.tls.pinned-thumbprints") ?? [], "actorpool.cluster.tls.pinned-thumbprints")
            .Select(t => t.Replace(":", "").Replace(" ", "").ToUpperInvariant()).ToList();
        foreach (var pin in pins)
            PoolSettings.Require(pin.Length == 40 && pin.All(char.IsAsciiHexDigit), "actorpool.cluster.tls.pinned-thumbprints", $"\"{pin}\"",
                "must list SHA-1 thumbprints (40 hexadecimal digits)");
        if (pins.Count == 0)
            pins.Add(certificate.Thumbprint.ToUpperInvariant());
        // Both sides present a certificate; the pins replace chain validation (a self-made certificate has no CA).
        return new Loaded(certificate, CertificateValidation.PinnedCertificate(pins.ToArray()));
    }

    private static readonly Dictionary<string, Loaded> FromSecrets = new(StringComparer.Ordinal);

    /// <summary>
    /// The member's certificate for the key the secret determines (made once per process and secret), and a check
    /// that a peer's certificate carries that same public key.
    /// </summary>
    private static Loaded FromSecret(string secret)
    {
        lock (FromSecrets)
        {
            if (FromSecrets.TryGetValue(secret, out var known))
                return known;
            using var key = DeriveKey(secret);
            var request = new CertificateRequest("CN=ActorPool cluster member", key, HashAlgorithmName.SHA256);
            var now = DateTimeOffset.UtcNow;
            using var made = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(10));
            var certificate = X509CertificateLoader.LoadPkcs12(made.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.Exportable);
            var expected = key.ExportSubjectPublicKeyInfo();
            CertificateValidationCallback validate = (peer, _, _, _, _) =>
                peer is not null && peer.GetECDsaPublicKey() is { } peerKey && Same(peerKey, expected);
            return FromSecrets[secret] = new Loaded(certificate, validate);
        }

        static bool Same(ECDsa peerKey, byte[] expected)
        {
            using (peerKey)
                return CryptographicOperations.FixedTimeEquals(peerKey.ExportSubjectPublicKeyInfo(), expected);
        }
    }

    /// <summary>A P-256 key determined by the secret: every member that holds the secret derives the same one.</summary>
    internal static ECDsa DeriveKey(string secret)
    {
        var order = System.Numerics.BigInteger.Parse("0FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", System.Globalization.NumberStyles.HexNumber);
        var secretBytes = System.Text.Encoding.UTF8.GetBytes(secret);
        for (var round = 0; ; round++)
        {
            var d = HMACSHA256.HashData(secretBytes, System.Text.Encoding.ASCII.GetBytes($"ActorPool cluster key v1/{round}"));
            var value = new System.Numerics.BigInteger(d, isUnsigned: true, isBigEndian: true);
            if (value.IsZero || value >= order)
                continue; // outside the curve's scalars: about once in 2^32 secrets
            return ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d });
        }
    }
}
