using Akka.Configuration;

namespace ActorPool.Configuration;

/// <summary>
/// Parses user HOCON. Akka's parser loops, allocating without bound, on some malformed text (an array left open
/// inside an object, say): brackets are checked first, and a parse that does not finish in a few seconds fails.
/// </summary>
internal static class Hocon
{
    /// <summary>How long a parse may take before the text is called malformed.</summary>
    private static readonly TimeSpan ParseLimit = TimeSpan.FromSeconds(5);

    /// <param name="text">The HOCON.</param>
    /// <param name="origin">What the text is, for messages ("PoolOptions.Config", "--config 'x.conf'").</param>
    /// <exception cref="ArgumentException">The text is not valid HOCON; the message says where.</exception>
    public static Config Parse(string text, string origin)
    {
        if (CheckBrackets(text) is { } problem)
            throw new ArgumentException($"{origin} is not valid HOCON: {problem}.");
        var parse = Task.Factory.StartNew(() => ConfigurationFactory.ParseString(text), CancellationToken.None,
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
            if (!value.IsObject())
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
