using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ActorPool.Node;

/// <summary>
/// <c>actorpool-node cert create</c>: makes a cluster's certificate (for <c>actorpool.cluster.tls.certificate</c>): a
/// self-signed ECDSA P-256 certificate with its key, in a PKCS#12 file readable by its owner only, and prints the
/// thumbprint to pin.
/// </summary>
internal static class CertCommand
{
    public const int ExitOk = 0, ExitFailed = 1, ExitUsage = Shared.CommandLineErrors.ExitUsage;

    public static int Create(FileInfo output, string subject, int days, bool force)
    {
        if (days is < 1 or > 36500)
        {
            Console.Error.WriteLine($"actorpool-node cert create: --days {days} must be between 1 and 36500.");
            return ExitUsage;
        }
        if (output.Exists && !force)
        {
            Console.Error.WriteLine($"actorpool-node cert create: '{output.FullName}' exists; give --force to replace it.");
            return ExitUsage;
        }
        var password = Environment.GetEnvironmentVariable("ACTORPOOL_CERT_PASSWORD") ?? "";
        try
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest($"CN={subject}", key, HashAlgorithmName.SHA256);
            var now = DateTimeOffset.UtcNow;
            using var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(days));
            var bytes = certificate.Export(X509ContentType.Pkcs12, password);
            var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var file = new FileStream(output.FullName, options))
                file.Write(bytes);
            Console.Out.WriteLine($"Wrote {output.FullName} (CN={subject}, valid {days} days, key ECDSA P-256{(password.Length > 0 ? ", password from ACTORPOOL_CERT_PASSWORD" : ", no password")}).");
            Console.Out.WriteLine($"Thumbprint: {certificate.Thumbprint}");
            Console.Out.WriteLine("Give the same file to every member: actorpool.cluster.tls.certificate = \"" + output.FullName + "\" (see hocon/coordinator.conf).");
            return ExitOk;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            Console.Error.WriteLine($"actorpool-node cert create: cannot write '{output.FullName}': {e.Message}");
            return ExitFailed;
        }
    }
}
