# frozen_string_literal: true

require "cgi"
require "json"
require "open3"
require "openssl"

# The work of BookProcessingJob on one book, in a scratch directory, with the worker hosts' PDF
# toolchain (roles/pdf_toolchain): the source PDF comes from the app's bucket; pdftk bursts it into
# per-page PDFs (their count is the book's pages); its text, laid out as an HTML chapter, is
# rendered by `book-pages` at a reader's viewport (height in pixels, pages of that viewport);
# ImageMagick makes a cover thumbnail of the first page; qpdf encrypts a copy with AES-128 (pdftk
# must still read it, which is checked); everything goes back to the bucket under books/<id>/.
class BookProcessor
  class ToolFailed < StandardError; end

  VIEWPORT = ENV.fetch("BOOK_VIEWPORT", "800x1200")
  THUMBNAIL_SIZE = "300x300"

  def initialize(book, dir, storage: BookStorage.new)
    @book = book
    @dir = Pathname(dir)
    @storage = storage
  end

  # Returns the attributes to record on the book.
  def run
    source = @dir.join("source.pdf")
    @storage.download(@book.source_key, source)
    pages = burst(source)
    rendered = render(source)
    thumbnail = thumbnail(source)
    encrypted = encrypt(source, pages.size)
    prefix = "books/#{@book.id}"
    pages.each { |page| @storage.upload(page, "#{prefix}/pages/#{page.basename}", "application/pdf") }
    {
      pages: pages.size,
      rendered_height: rendered.fetch("height"),
      rendered_pages: rendered.fetch("pages"),
      pages_prefix: "#{prefix}/pages/",
      thumbnail_key: @storage.upload(thumbnail, "#{prefix}/cover.png", "image/png"),
      encrypted_key: @storage.upload(encrypted, "#{prefix}/encrypted.pdf", "application/pdf")
    }
  end

  # The owner password of the encrypted copies (readers open them without one; the owner password
  # guards printing and changes), derived from the app's secret.
  def self.owner_password
    OpenSSL::HMAC.hexdigest("SHA256", Rails.application.secret_key_base.to_s, "book-pdf-owner")[0, 32]
  end

  private

  def burst(source)
    out = @dir.join("pages")
    out.mkpath
    tool("pdftk", source.to_s, "burst", "output", out.join("page_%04d.pdf").to_s)
    pages = out.children.select { |f| f.extname == ".pdf" }.sort
    raise ToolFailed, "pdftk burst made no pages" if pages.empty?

    pages
  end

  def render(source)
    text = @dir.join("text.txt")
    tool("pdftotext", "-enc", "UTF-8", source.to_s, text.to_s)
    chapter = @dir.join("chapter.html")
    paragraphs = File.read(text).split(/\n\s*\n|\f/).map(&:strip).reject(&:empty?)
    chapter.write(<<~HTML)
      <!DOCTYPE html>
      <html><head><meta charset="utf-8"><title>#{CGI.escapeHTML(@book.title)}</title>
      <style>body { font: 18px/1.5 serif; margin: 40px; }</style></head>
      <body>#{paragraphs.map { |p| "<p>#{CGI.escapeHTML(p)}</p>" }.join("\n")}</body></html>
    HTML
    JSON.parse(tool("book-pages", "--viewport", VIEWPORT, chapter.to_s))
  end

  def thumbnail(source)
    cover = @dir.join("cover.png")
    tool("convert", "-density", "72", "#{source}[0]", "-thumbnail", THUMBNAIL_SIZE,
         "-background", "white", "-alpha", "remove", cover.to_s)
    cover
  end

  def encrypt(source, pages)
    encrypted = @dir.join("encrypted.pdf")
    owner = self.class.owner_password
    tool("qpdf", "--encrypt", "", owner, "128", "--use-aes=y", "--", source.to_s, encrypted.to_s)
    data = tool("pdftk", encrypted.to_s, "input_pw", owner, "dump_data")
    read = data[/^NumberOfPages: (\d+)/, 1].to_i
    raise ToolFailed, "pdftk reads #{read} pages in the encrypted copy, not #{pages}" unless read == pages

    encrypted
  end

  def tool(*argv)
    out, err, status = Open3.capture3(*argv, chdir: @dir.to_s)
    raise ToolFailed, "#{argv.first} failed (#{status.exitstatus}): #{err.strip.lines.last(3).join(' ')}" unless status.success?

    out
  end
end
