# frozen_string_literal: true

class BooksController < ApplicationController
  # GET /books: every book, newest first.
  def index
    render json: Book.newest_first
  end

  # GET /books/:id
  def show
    render json: Book.find(params[:id])
  end

  # POST /books with {"book": {"title": ..., "pages": ...}} or {"title": ..., "pages": ...};
  # "source_key" names the book's PDF in the app's S3 bucket (BookProcessingJob processes it).
  def create
    book = Book.new(book_params)
    if book.save
      render json: book, status: :created, location: book_url(book)
    else
      render json: { errors: book.errors }, status: :unprocessable_entity
    end
  end

  # POST /books/:id/process: hand the book to the worker (BookProcessingJob on queue "books").
  def enqueue_processing
    book = Book.find(params[:id])
    jid = BookProcessingJob.perform_async(book.id)
    render json: { id: book.id, status: book.status, job_id: jid }, status: :accepted
  rescue Redis::BaseError => e
    render json: { error: "queue unavailable", detail: e.class.name }, status: :service_unavailable
  end

  private

  # Accept the attributes nested under "book" or at the top level of the body.
  def book_params
    source = params[:book].is_a?(ActionController::Parameters) ? params[:book] : params
    source.permit(:title, :pages, :source_key)
  end
end
