using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ActorPool.Configuration;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Remote.Transport.DotNetty;

namespace ActorPool.Hosting;

/// <summary>
/// TLS between the members of an ActorPool cluster (<c>actorpool.cluster.tls</c>): mutual authentication, and a
/// peer's certificate must be one of the pinned thumbprints (by default the member's own: a shared certificate).
/// </summary>
internal static class ClusterTls
{
    /// <summary>The Akka settings and setup that turn TLS on; null when no certificate is configured.</summary>
    /// <exception cref="ArgumentException">The certificate cannot be read, or a setting is invalid; the message says which.</exception>
    public static (Config Config, Setup Setup)? Configure(Config actorpool)
    {
        var path = PoolSettings.Read(() => actorpool.GetString("cluster.tls.certificate") ?? "", "actorpool.cluster.tls.certificate");
        if (path.Length == 0)
            return null;
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
        var setup = new DotNettySslSetup(certificate, false, true, CertificateValidation.PinnedCertificate(pins.ToArray()));
        return (ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.enable-ssl = true"), setup);
    }
}
