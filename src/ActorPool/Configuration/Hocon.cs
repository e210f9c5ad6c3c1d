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
