package analytics.text

import scala.collection.mutable
import scala.io.Source

/** A token with its position in the input. */
final case class Token(text: String, offset: Int)

/** Splits text into tokens. */
trait Tokenizer {
  def tokenize(text: String): Seq[Token]

  def tokenize(lines: Iterator[String]): Iterator[Token] =
    lines.flatMap(tokenize)
}

sealed trait Order
object Order {
  case object ByCount extends Order
  case object Alphabetical extends Order
}

/**
 * Counts words, ignoring case and stop words.
 */
class WordCount(stopWords: Set[String]) extends Tokenizer {
  private val counts = mutable.Map.empty[String, Int].withDefaultValue(0)

  def this() = this(Set("a", "an", "the"))

  override def tokenize(text: String): Seq[Token] =
    "\\w+".r.findAllMatchIn(text).map(m => Token(m.matched.toLowerCase, m.start)).toSeq

  /** Adds every word of `text` to the counts. */
  def add(text: String): this.type = {
    for (token <- tokenize(text) if !stopWords(token.text)) {
      counts(token.text) += 1
    }
    this
  }

  def top(n: Int, order: Order = Order.ByCount): List[(String, Int)] = order match {
    case Order.ByCount      => counts.toList.sortBy(-_._2).take(n)
    case Order.Alphabetical => counts.toList.sortBy(_._1).take(n)
  }
}

object WordCount {
  val DefaultTop = 10

  def fromFile(path: String): WordCount = {
    val wc = new WordCount()
    val source = Source.fromFile(path)
    try source.getLines().foreach(wc.add)
    finally source.close()
    wc
  }

  def main(args: Array[String]): Unit =
    args.headOption.map(fromFile).foreach(wc => println(wc.top(DefaultTop)))
}

enum Level:
  case Low, High

  def label: String = toString.toLowerCase

extension (s: String)
  def wordCount: Int = s.split("\\s+").count(_.nonEmpty)
