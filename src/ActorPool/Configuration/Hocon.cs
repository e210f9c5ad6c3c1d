using Akka.Configuration;

namespace ActorPool.Configuration;

/// <summary>
/// Parses user HOCON. Akka's parser loops, allocating without bound, on some malformed text (an array left open
/// inside an object, say): brackets are checked first, and a parse that does not finish in a few seconds fails.
/// </summary>
internal static partial class Hocon
{
    /// <summary>How long a parse may take before the text is called malformed.</summary>
    private static readonly TimeSpan ParseLimit = TimeSpan.FromSeconds(5);

    /// <param name="text">The HOCON.</param>
    /// <param name="origin">What the text is, for messages ("PoolOptions.Config", "--config 'x.conf'").</param>
    /// <param name="folder">Where relative <c>include</c>s are found (the file's folder; default the current directory).</param>
    /// <exception cref="ArgumentException">The text is not valid HOCON; the message says where.</exception>
    public static Config Parse(string text, string origin, string? folder = null)
    {
        if (CheckBrackets(text) is { } problem)
            throw new ArgumentException($"{origin} is not valid HOCON: {problem}.");
        text = SubstituteEnvironment(text, origin);
        folder ??= Environment.CurrentDirectory;
        var parse = Task.Factory.StartNew(() => ConfigurationFactory.ParseString(text, name => Include(name, origin, folder, depth: 1)), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            if (!parse.Wait(ParseLimit))
                throw new ArgumentException($"{origin} is not valid HOCON: the parser did not finish within {ParseLimit.TotalSeconds:0} s (check brackets, quotes and separators).");
            return parse.Result;
        }
        catch (AggregateException e)
        {
            throw new ArgumentException($"{origin} is not valid HOCON: {e.InnerException?.Message}", e.InnerException);
        }
    }

    /// <summary>
    /// <c>include "file"</c>: the file (relative to the including file's folder), checked and substituted like the text
    /// that includes it; a file that cannot be read or parsed is an error naming it. Includes nest at most 8 deep.
    /// </summary>
    private static Akka.Configuration.Hocon.HoconRoot Include(string name, string origin, string folder, int depth)
    {
        if (depth > 8)
            throw new ArgumentException($"include \"{name}\": includes nest more than 8 deep (an include cycle?).");
        var path = Path.GetFullPath(name, folder);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new ArgumentException($"include \"{name}\": cannot read '{path}': {e.Message}");
        }
        if (CheckBrackets(text) is { } problem)
            throw new ArgumentException($"include \"{name}\" ('{path}') is not valid HOCON: {problem}.");
        text = SubstituteEnvironment(text, $"include \"{name}\"");
        try
        {
            return Akka.Configuration.Hocon.Parser.Parse(text, inner => Include(inner, origin, Path.GetDirectoryName(path)!, depth + 1));
        }
        catch (Exception e) when (e is not ArgumentException)
        {
            throw new ArgumentException($"include \"{name}\" ('{path}') is not valid HOCON: {e.Message}");
        }
    }

    /// <summary>
    /// HOCON's environment substitutions, which Akka's parser leaves empty: <c>${NAME}</c> and <c>${?NAME}</c> (a name
    /// without dots, outside strings and comments) become the environment variable's value as a quoted string. An unset
    /// <c>${?NAME}</c> that is a field's whole value leaves the field unset (its default applies); an unset <c>${NAME}</c>
    /// is an error naming the variable. Substitutions of configuration paths (with dots) are Akka's.
    /// </summary>
    internal static string SubstituteEnvironment(string text, string origin)
    {
        if (!text.Contains("${", StringComparison.Ordinal))
            return text;
        var lines = text.Split('\n');
        for (var n = 0; n < lines.Length; n++)
        {
            var line = lines[n];
            if (!line.Contains("${", StringComparison.Ordinal))
                continue;
            var whole = WholeFieldSubstitution().Match(line);
            if (whole.Success && whole.Groups["optional"].Success && Environment.GetEnvironmentVariable(whole.Groups["name"].Value) is null)
            {
                lines[n] = "# " + line + " (unset: default applies)";
                continue;
            }
            lines[n] = Substitution().Replace(line, m =>
            {
                if (InsideStringOrComment(line, m.Index))
                    return m.Value;
                var name = m.Groups["name"].Value;
                if (Environment.GetEnvironmentVariable(name) is { } value)
                    return "\"" + value.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
                if (m.Groups["optional"].Success)
                    return "\"\"";
                throw new ArgumentException($"{origin} line {n + 1}: ${{{name}}} is not set: set the environment variable {name}, " +
                                            $"or write ${{?{name}}} to leave the setting at its default when it is not set.");
            });
        }
        return string.Join('\n', lines);
    }

    private static bool InsideStringOrComment(string line, int at)
    {
        var quoted = false;
        for (var i = 0; i < at; i++)
        {
            if (line[i] == '\\' && quoted)
                i++;
            else if (line[i] == '"')
                quoted = !quoted;
            else if (!quoted && (line[i] == '#' || (line[i] == '/' && i + 1 < line.Length && line[i + 1] == '/')))
                return true;
        }
        return quoted;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\$\{(?<optional>\?)?(?<name>[A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial System.Text.RegularExpressions.Regex Substitution();

    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*[A-Za-z0-9_.\-""]+\s*[=:]\s*\$\{(?<optional>\?)?(?<name>[A-Za-z_][A-Za-z0-9_]*)\}\s*(#.*|//.*)?\r?$")]
    private static partial System.Text.RegularExpressions.Regex WholeFieldSubstitution();

    /// <summary>The first unbalanced bracket or brace outside strings and comments, described; null when balanced.</summary>
    internal static string? CheckBrackets(string text)
    {
        var open = new Stack<(char Closer, int Line)>();
        var line = 1;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            switch (c)
            {
                case '\n':
                    line++;
                    break;
                case '#':
                case '/' when i + 1 < text.Length && text[i + 1] == '/':
                    while (i + 1 < text.Length && text[i + 1] != '\n')
                        i++;
                    break;
                case '"' when i + 2 < text.Length && text[i + 1] == '"' && text[i + 2] == '"':
                    var end = text.IndexOf("\"\"\"", i + 3, StringComparison.Ordinal);
                    if (end < 0)
                        return $"the \"\"\" string opened on line {line} is not closed";
                    line += text.AsSpan(i, end - i).Count('\n');
                    i = end + 2;
                    break;
                case '"':
                    var start = line;
                    for (i++; i < text.Length && text[i] != '"'; i++)
                    {
                        if (text[i] == '\\')
                            i++;
                        else if (text[i] == '\n')
                            return $"the string opened on line {start} is not closed on that line";
                    }
                    if (i >= text.Length)
                        return $"the string opened on line {start} is not closed";
                    break;
                case '{':
                    open.Push(('}', line));
                    break;
                case '[':
                    open.Push((']', line));
                    break;
                case '}' or ']':
                    if (open.Count == 0)
                        return $"'{c}' on line {line} closes nothing";
                    var (closer, at) = open.Pop();
                    if (closer != c)
                        return $"'{c}' on line {line} does not close the '{(closer == '}' ? '{' : '[')}' opened on line {at}";
                    break;
            }
        }
        return open.Count == 0 ? null : $"the '{(open.Peek().Closer == '}' ? '{' : '[')}' opened on line {open.Peek().Line} is not closed";
    }
}

/// <summary>Rejects <c>actorpool.*</c> keys that reference.conf does not have (a typo would otherwise be ignored).</summary>
internal static class KnownKeys
{
    private static readonly Lazy<HashSet<string>> Known = new(() => Leaves(PoolSettings.Reference, "actorpool").ToHashSet(StringComparer.Ordinal));

    /// <exception cref="ArgumentException">A key under <c>actorpool</c> is unknown; the message names it and the likely intended one.</exception>
    public static void Check(Config config, string origin)
    {
        if (config.IsEmpty || !config.HasPath("actorpool"))
            return;
        foreach (var key in Leaves(config, "actorpool"))
        {
            if (Known.Value.Contains(key))
                continue;
            var closest = Known.Value.MinBy(k => Distance(k, key));
            var hint = closest is not null && Distance(closest, key) <= 3 ? $" Did you mean '{closest}'?" : "";
            throw new ArgumentException($"{origin} sets '{key}', which is not an ActorPool setting.{hint} Every setting is listed, with its meaning, in hocon/reference.conf.");
        }
    }

    private static IEnumerable<string> Leaves(Config config, string root)
    {
        var value = config.GetValue(root);
        return value is null ? [] : Walk(value, root);

        static IEnumerable<string> Walk(Akka.Configuration.Hocon.HoconValue value, string path)
        {
            // A substitution (Akka's parser loops on IsObject for an unresolved one) is a leaf.
            if (value.Values.Any(v => v is Akka.Configuration.Hocon.HoconSubstitution) || !value.IsObject())
            {
                yield return path;
                yield break;
            }
            foreach (var (key, child) in value.GetObject().Items)
                foreach (var leaf in Walk(child, $"{path}.{key}"))
                    yield return leaf;
        }
    }

    private static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var diagonal = row[0];
            row[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }
}
