using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Remote.Transport.DotNetty;

namespace ActorPool.Hosting;

/// <summary>
/// A TLS identity as a handshake hands it to a child process: the certificate and its private key (PEM), and the
/// thumbprints a peer's certificate must have. It travels only over the child's standard input (a pipe between two
/// processes of one user), never over a socket.
/// </summary>
internal sealed record TlsIdentity(string CertificatePem, string KeyPem, string[] Pins);

/// <summary>
/// The TLS identity of this program's process tree, and the Akka.Remote transport settings that use it. Every
/// ActorSystem ActorPool starts for itself on one machine (a pool's, the queue and lock host, a spawned worker's, a
/// forkserver spare's, an <see cref="ActorProcess"/> child's) speaks mutual TLS with this one certificate pinned:
/// a process that does not hold its key fails the TLS handshake, before Akka reads (deserializes) anything it sends.
/// The program that starts first makes the certificate (an ephemeral ECDSA P-256 key, in memory only); the
/// processes it starts adopt it from their handshake, so a whole tree of pools, workers and children trusts itself
/// and nobody else. This is Python's <c>authkey</c> as a transport: the key itself never crosses a socket.
/// </summary>
internal static class ProcessTrust
{
    private static TlsIdentity? _adopted;
    private static readonly Lazy<(X509Certificate2 Certificate, TlsIdentity Identity)> Own = new(Make);

    /// <summary>Called first in a child: use the identity its parent handed over (ignored once the identity is in use).</summary>
    public static void Adopt(TlsIdentity? identity)
    {
        if (identity is not null && !Own.IsValueCreated)
            _adopted = identity;
    }

    /// <summary>This process tree's identity, as a handshake carries it.</summary>
    public static TlsIdentity Identity => Own.Value.Identity;

    /// <summary>
    /// The Akka settings and setup for mutual TLS with <paramref name="identity"/> (default: this process tree's). The
    /// configuration turns TLS on for the DotNetty transport; addresses become <c>akka.ssl.tcp://</c>.
    /// </summary>
    public static (Config Config, Setup Setup) Transport(TlsIdentity? identity = null)
    {
        var certificate = identity is null || ReferenceEquals(identity, Own.Value.Identity) ? Own.Value.Certificate : Load(identity);
        var pins = (identity ?? Own.Value.Identity).Pins;
        // Both sides present a certificate; the pins replace chain validation (a certificate made here has no CA).
        var setup = new DotNettySslSetup(certificate, false, true, CertificateValidation.PinnedCertificate(pins));
        return (TlsOn, setup);
    }

    private static readonly Config TlsOn = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.enable-ssl = true");

    private static (X509Certificate2, TlsIdentity) Make()
    {
        if (_adopted is { } adopted)
            return (Load(adopted), adopted);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=ActorPool process tree", key, HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        using var made = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(10));
        var identity = new TlsIdentity(made.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem(), [made.Thumbprint.ToUpperInvariant()]);
        return (Load(identity), identity);
    }

    /// <summary>The certificate with its key, from PEM.</summary>
    /// <exception cref="ArgumentException">The PEM is not a certificate and its key.</exception>
    private static X509Certificate2 Load(TlsIdentity identity)
    {
        try
        {
            using var pem = X509Certificate2.CreateFromPem(identity.CertificatePem, identity.KeyPem);
            // Through PKCS#12 once: TLS on Linux wants the key in a form it can hand to OpenSSL as is.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.Exportable);
        }
        catch (CryptographicException e)
        {
            throw new ArgumentException($"The TLS identity handed to this process cannot be read: {e.Message}", nameof(identity), e);
        }
    }
}
