using ActorPool.Configuration;
using Xunit;

namespace ActorPool.Tests.Configuration;

/// <summary>HOCON's environment substitutions and includes in user configuration: values, defaults, clear errors, bounded time.</summary>
public sealed class HoconSubstitutionSpec : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorpool-hocon-spec-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static PoolSettings Create(string hocon) =>
        PoolSettings.Create(PoolSettings.ParseUserConfig(hocon, "test").WithFallback(PoolSettings.Reference), new PoolOptions());

    [Fact]
    public void A_set_variable_must_give_its_value_and_an_unset_optional_one_the_default()
    {
        Environment.SetEnvironmentVariable("ACTORPOOL_TEST_WINDOW", "32");
        Environment.SetEnvironmentVariable("ACTORPOOL_TEST_UNSET", null);
        var started = DateTime.UtcNow;
        Assert.Equal(32, Create("actorpool.dispatch.max-window = ${?ACTORPOOL_TEST_WINDOW}").MaxWindow);
        Assert.Equal(32, Create("actorpool.dispatch.max-window = ${ACTORPOOL_TEST_WINDOW}").MaxWindow);
        Assert.Equal(256, Create("actorpool.dispatch.max-window = ${?ACTORPOOL_TEST_UNSET}").MaxWindow);
        // The forms that used to hang (HOME is a string where a number belongs; a password left unset).
        var error = Assert.Throws<ArgumentException>(() => Create("actorpool.dispatch.max-window = ${?HOME}"));
        Assert.Contains("actorpool.dispatch.max-window", error.Message);
        var tls = PoolSettings.ParseUserConfig("actorpool.cluster.tls.password = ${?ACTORPOOL_TEST_UNSET}", "test").WithFallback(PoolSettings.Reference);
        Assert.Equal("", tls.GetString("actorpool.cluster.tls.password"));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(20));
    }

    [Fact]
    public void An_unset_required_variable_must_be_named_with_what_to_do()
    {
        Environment.SetEnvironmentVariable("ACTORPOOL_TEST_UNSET", null);
        var error = Assert.Throws<ArgumentException>(() => Create("actorpool {\n  dispatch.max-window = ${ACTORPOOL_TEST_UNSET}\n}"));
        Assert.Contains("line 2: ${ACTORPOOL_TEST_UNSET} is not set", error.Message);
        Assert.Contains("${?ACTORPOOL_TEST_UNSET}", error.Message);
    }

    [Fact]
    public void Substitutions_inside_strings_and_comments_must_stay_as_written()
    {
        Environment.SetEnvironmentVariable("ACTORPOOL_TEST_WINDOW", "32");
        var config = PoolSettings.ParseUserConfig("actorpool.cluster.secret = \"a${ACTORPOOL_TEST_WINDOW}b\" # ${ACTORPOOL_TEST_NOPE}", "test");
        Assert.Equal("a${ACTORPOOL_TEST_WINDOW}b", config.GetString("actorpool.cluster.secret"));
    }

    [Fact]
    public void An_include_must_read_the_file_and_a_bad_one_must_be_named()
    {
        File.WriteAllText(Path.Combine(_dir, "window.conf"), "actorpool.dispatch.max-window = 16");
        var settings = PoolSettings.Create(Hocon.Parse("include \"window.conf\"", "test", _dir).WithFallback(PoolSettings.Reference), new PoolOptions());
        Assert.Equal(16, settings.MaxWindow);

        var missing = Assert.Throws<ArgumentException>(() => Hocon.Parse("include \"nope.conf\"", "test", _dir));
        Assert.Contains("include \"nope.conf\": cannot read", missing.Message);
        var notHocon = Assert.Throws<ArgumentException>(() => Hocon.Parse("include \"/etc/passwd\"", "test", _dir));
        Assert.Contains("/etc/passwd", notHocon.Message);
    }
}

/// <summary>Plain TCP in a cluster is refused beyond loopback unless the user opts out explicitly.</summary>
public sealed class ClusterPlainTextSpec
{
    private static Akka.Configuration.Config Cluster(string tls) =>
        PoolSettings.ParseUserConfig($"actorpool.cluster {{ enabled = on, secret = \"s\" }}\n{tls}", "test").WithFallback(PoolSettings.Reference).GetConfig("actorpool");

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("10.1.2.3")]
    [InlineData("coordinator.example.com")]
    [InlineData("")]
    public void Tls_off_on_an_address_beyond_loopback_must_be_refused_naming_the_opt_out(string host)
    {
        var error = Assert.Throws<ArgumentException>(() => Hosting.ClusterTls.CheckPlainText(Cluster("actorpool.cluster.tls.enabled = off"), [host]));
        Assert.Contains("allow-plain-text-network = on", error.Message);
    }

    [Fact]
    public void Tls_off_on_loopback_or_with_the_opt_out_and_tls_on_anywhere_must_be_allowed()
    {
        Hosting.ClusterTls.CheckPlainText(Cluster("actorpool.cluster.tls.enabled = off"), ["127.0.0.1", "localhost", "::1"]);
        Hosting.ClusterTls.CheckPlainText(Cluster("actorpool.cluster.tls { enabled = off, allow-plain-text-network = on }"), ["0.0.0.0"]);
        Hosting.ClusterTls.CheckPlainText(Cluster(""), ["0.0.0.0"]);
        Assert.NotNull(Hosting.ClusterTls.Configure(Cluster("")));
        Assert.Null(Hosting.ClusterTls.Configure(Cluster("actorpool.cluster.tls.enabled = off")));
    }

    [Fact]
    public void The_key_derived_from_a_secret_must_be_the_same_on_every_member_and_differ_between_secrets()
    {
        using var a = Hosting.ClusterTls.DeriveKey("one secret");
        using var b = Hosting.ClusterTls.DeriveKey("one secret");
        using var c = Hosting.ClusterTls.DeriveKey("another secret");
        Assert.Equal(a.ExportSubjectPublicKeyInfo(), b.ExportSubjectPublicKeyInfo());
        Assert.NotEqual(a.ExportSubjectPublicKeyInfo(), c.ExportSubjectPublicKeyInfo());
    }
}
